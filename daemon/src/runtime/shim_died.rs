//! A pod's shim died (kill -9, OOM kill, crash): its containers' processes live on,
//! reparented, with nobody to report their exits. crustd notices the death through a
//! pidfd of the shim ([`shim::watch`]), or when a call finds the shim's socket dead, and
//! then, as containerd does after a dead shim: cleans each of the shim's containers with
//! the shim binary's `delete` bootstrap (the runtime's `delete --force`: kills what is
//! left, removes the cgroup and the runtime state; unmounts the rootfs), marks it exited
//! with code 255 and the message "shim died", and emits its Stopped event. The pod stays
//! Ready (its namespaces are crustd's): its next CreateContainer launches a new shim.
//! Stop and Remove of those containers then find them exited and clean the rest.

use super::shim::{self, watch};
use super::types::{ContainerRecord, ContainerState, EventKind};
use super::{now, Runtime};

/// Exit code of a container whose shim died (containerd's).
pub const SHIM_DIED_CODE: i32 = 255;
/// Message of a container whose shim died.
pub const SHIM_DIED: &str = "shim died";

impl Runtime {
    /// Watches the shim behind connection `s` of `pod_id`; when it dies, cleans up after it.
    pub(in crate::runtime) fn watch_shim(&self, pod_id: &str, s: shim::Shim) {
        let me = self.me.clone();
        let pod = pod_id.to_string();
        tokio::spawn(async move {
            match watch::follow(&s, &pod).await {
                watch::Watch::Process(fd) => fd.exited().await,
                watch::Watch::Gone => {}
                watch::Watch::Unknown => return,
            }
            // Holding only a weak reference while waiting: a shim outlives its crustd.
            let Some(me) = me.upgrade() else {
                return;
            };
            me.shim_died(&pod, Some(s.conn_id())).await;
        });
    }

    /// [`Runtime::shim_died`] in a task of its own (for callers holding a container lock).
    pub(in crate::runtime) fn shim_died_later(&self, pod_id: &str, conn: u64) {
        if let Some(me) = self.me.upgrade() {
            let pod = pod_id.to_string();
            tokio::spawn(async move { me.shim_died(&pod, Some(conn)).await });
        }
    }

    /// Cleans up after `pod_id`'s dead shim (the one of connection `conn`; `None`: the
    /// cached one). Idempotent; containers a newer shim of the pod serves are left alone.
    pub(in crate::runtime) async fn shim_died(&self, pod_id: &str, conn: Option<u64>) {
        let current = {
            let mut shims = self.shims.lock().await;
            match shims.get(pod_id) {
                Some(s) if conn.is_none_or(|c| c == s.conn_id()) => {
                    shims.remove(pod_id);
                    None
                }
                other => other.cloned(),
            }
        };
        let mut n = 0;
        for c in self.pod_containers(pod_id) {
            if !matches!(c.state, ContainerState::Created | ContainerState::Running) {
                continue;
            }
            if let Some(cur) = &current {
                if cur.state(&c.id).await.is_ok() {
                    continue;
                }
            }
            let _g = self.locks.lock(format!("ctr/{}", c.id)).await;
            let Ok(c) = self.container(&c.id) else {
                continue;
            };
            if !matches!(c.state, ContainerState::Created | ContainerState::Running) {
                continue;
            }
            if let Err(e) = self.reap_orphan_task(&c).await {
                tracing::warn!(container = %c.id, error = %e, "recording a dead shim's container");
            }
            n += 1;
        }
        if n > 0 {
            tracing::warn!(pod = %pod_id, containers = n, "the pod's shim died");
        } else {
            tracing::debug!(pod = %pod_id, "the pod's shim exited");
        }
    }

    /// Container `c`'s shim is dead: kill and clean what is left of it and record it as
    /// exited. The caller holds the container's lock.
    pub(in crate::runtime) async fn reap_orphan_task(
        &self,
        c: &ContainerRecord,
    ) -> super::error::Result<()> {
        shim::delete_without_shim(&self.cfg.shim, &c.id, &c.bundle, watch::CLEANUP).await;
        // One Stopped event per exit: an exit recorded meanwhile stands.
        let _g = self.locks.lock(format!("exit/{}", c.id)).await;
        if self.container(&c.id)?.state == ContainerState::Exited {
            return Ok(());
        }
        let rec = self
            .update_container(&c.id, |r| {
                r.state = ContainerState::Exited;
                r.finished_at = now().max(r.started_at);
                r.exit_code = SHIM_DIED_CODE;
                r.pid = 0;
                r.reason = "Error".into();
                r.message = SHIM_DIED.into();
            })
            .await?;
        self.emit(&c.id, &rec.pod_id, EventKind::Stopped);
        tracing::warn!(container = %c.id, "container's shim died: marked exited");
        Ok(())
    }
}
