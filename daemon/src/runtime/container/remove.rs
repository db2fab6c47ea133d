//! RemoveContainer: stop if running, delete the task in the shim (or, when the shim is
//! gone, clean with the shim's `delete` bootstrap), remove the writable snapshot, the
//! bundle and the record. Unknown ids are success (idempotent, as containerd).

use crate::error::{ErrorKind, Kind as _};
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::shim;
use crate::runtime::types::{ContainerState, EventKind};
use crate::runtime::Runtime;
use crate::snapshots::Snapshotter as _;

impl Runtime {
    /// Removes container `id`.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let Ok(rec) = self.container(id) else {
            return Ok(());
        };
        if matches!(rec.state, ContainerState::Running | ContainerState::Unknown) {
            self.stop_container(&rec.id, 0).await?;
        }
        let _g = self.locks.lock(format!("ctr/{}", rec.id)).await;
        let mut deleted = false;
        if let Some(shim) = self.shim(&rec.pod_id).await.ok().flatten() {
            match shim.delete(&rec.id, "").await {
                Ok(()) => deleted = true,
                Err(e) if e.kind() == ErrorKind::NotFound => deleted = true,
                Err(e) => tracing::warn!(container = %rec.id, error = %e, "shim delete"),
            }
        }
        if !deleted {
            self.drop_shim(&rec.pod_id).await;
            shim::delete_without_shim(&self.cfg.shim, &rec.id, &rec.bundle, shim::watch::CLEANUP)
                .await;
        }
        // Never walk into a still-mounted rootfs.
        let rootfs = rec.bundle.join("rootfs");
        for _ in 0..8 {
            if nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
        let removed = {
            let (snapshots, key) = (self.images.snapshotter(), rec.snapshot.clone());
            tokio::task::spawn_blocking(move || snapshots.remove(&key))
                .await
                .map_err(|e| RuntimeError::Blocking {
                    op: "remove snapshot",
                    id: rec.id.clone(),
                    message: e.to_string(),
                })?
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RuntimeError::Snapshot {
                    key: rec.snapshot.clone(),
                    source: Box::new(source),
                })
            }
        }
        let _ = std::fs::remove_dir_all(&rec.bundle);
        self.forget_container(&rec.id).await?;
        self.images.release_volumes(&rec.id);
        self.emit(&rec.id, &rec.pod_id, EventKind::Deleted);
        tracing::info!(container = %rec.id, "container removed");
        Ok(())
    }
}
