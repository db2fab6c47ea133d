//! RemovePodSandbox: stop if needed, remove every container, the pod's files and record.
//! Idempotent: an unknown id is success.

use super::error::Result;
use super::{podfiles, Runtime};

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
        podfiles::remove_dir(&rec.dir);
        self.forget_pod(&rec.id)?;
        tracing::info!(pod = %rec.id, "pod sandbox removed");
        Ok(())
    }
}
