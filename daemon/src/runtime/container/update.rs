//! UpdateContainerResources and ReopenContainerLog: both go to the pod's shim.

use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::types::{ContainerState, Resources};
use crate::runtime::{oci::resources, Runtime};

impl Runtime {
    /// Applies new resources to container `id` (recorded for later status too).
    pub async fn update_resources(&self, id: &str, r: Resources) -> Result<()> {
        let rec = self.container(id)?;
        resources::check(&r)?;
        let _g = self.locks.lock(format!("ctr/{}", rec.id)).await;
        if rec.state == ContainerState::Running {
            let shim = self
                .shim(&rec.pod_id)
                .await?
                .ok_or_else(|| RuntimeError::PodNotReady(rec.pod_id.clone()))?;
            let mut v = serde_json::json!({});
            resources::resources_json(&r, &mut v);
            let bytes = serde_json::to_vec(&v)
                .map_err(|e| RuntimeError::Invalid(format!("resources: {e}")))?;
            shim.update(&rec.id, Some(bytes), &[]).await?;
        } else if rec.state != ContainerState::Created {
            return Err(RuntimeError::WrongState {
                what: "container",
                id: rec.id,
                state: format!("{:?}", rec.state).to_lowercase(),
                op: "update resources",
            });
        }
        self.update_container(&rec.id, |c| c.spec.resources = r)
            .await?;
        Ok(())
    }

    /// Asks the shim to reopen the log file of running container `id`.
    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        let rec = self.container(id)?;
        if rec.state != ContainerState::Running {
            return Err(RuntimeError::WrongState {
                what: "container",
                id: rec.id,
                state: format!("{:?}", rec.state).to_lowercase(),
                op: "reopen log",
            });
        }
        let shim = self
            .shim(&rec.pod_id)
            .await?
            .ok_or_else(|| RuntimeError::PodNotReady(rec.pod_id.clone()))?;
        shim.update(
            &rec.id,
            None,
            &[(crust_shim_contract::REOPEN_LOG_ANNOTATION, "1")],
        )
        .await
    }
}
