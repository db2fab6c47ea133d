//! RemovePodSandbox: stop if needed, remove every container, the pod's files and record.
//! Idempotent: an unknown id is success.

use super::files;
use crate::runtime::cgroup::{self, CgroupDriver};
use crate::runtime::error::Result;
use crate::runtime::Runtime;

impl Runtime {
    /// Removes pod `id`.
    pub async fn remove_pod(&self, id: &str) -> Result<()> {
        let Ok(rec) = self.pod(id) else {
            return Ok(());
        };
        self.stop_pod(&rec.id).await?;
        let _g = self.locks.lock(format!("pod/{}", rec.id)).await;
        for c in self.pod_containers(&rec.id) {
            self.remove_container(&c.id).await?;
        }
        if let Some(s) = self.shim(&rec.id).await.ok().flatten() {
            s.shutdown().await;
        }
        self.drop_shim(&rec.id).await;
        self.teardown_pod(&rec).await;
        files::remove_dir(&rec.dir);
        if rec.spec.cgroup_parent.is_empty() {
            match rec.cgroup_driver {
                CgroupDriver::Cgroupfs => remove_cgroup(&rec.cgroup_parent),
                // The slice crustd named for the pod (systemd made it with the first scope).
                CgroupDriver::Systemd => {
                    let slice = rec.cgroup_parent.clone();
                    let _ = tokio::task::spawn_blocking(move || cgroup::stop_unit(&slice)).await;
                }
            }
        }
        self.forget_pod(&rec.id).await?;
        tracing::info!(pod = %rec.id, "pod sandbox removed");
        Ok(())
    }
}

/// Removes the (empty) cgroup `path` crust created as a pod's parent, in every hierarchy
/// of the host's layout (v1 controllers and the unified one), as crust-cgroups resolves it.
fn remove_cgroup(path: &str) {
    let rel = path.trim_matches('/');
    if rel.is_empty() {
        return;
    }
    let cg = match crust_cgroups::Cgroup::new(Some(&format!("/{rel}")), "pod") {
        Ok(cg) => cg,
        Err(err) => {
            tracing::debug!(cgroup = path, error = %err, "resolve pod cgroup");
            return;
        }
    };
    for h in cg.hierarchies() {
        if h.dir.is_dir() {
            // rmdir only: the parent must be empty by now; a leftover child stays visible.
            if let Err(err) = std::fs::remove_dir(&h.dir) {
                tracing::debug!(cgroup = %h.dir.display(), error = %err, "remove pod cgroup");
            }
        }
    }
}
