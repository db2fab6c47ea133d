//! StopPodSandbox: stop every container of the pod (SIGKILL after the grace the caller
//! gives, 0 here as containerd does), tear down the network and namespaces. Idempotent.

use crate::runtime::error::Result;
use crate::runtime::types::{ContainerState, PodState};
use crate::runtime::Runtime;

impl Runtime {
    /// Stops pod `id` (unknown ids are NotFound, as containerd answers).
    pub async fn stop_pod(&self, id: &str) -> Result<()> {
        let mut rec = self.pod(id)?;
        let _g = self.locks.lock(format!("pod/{}", rec.id)).await;
        for c in self.pod_containers(&rec.id) {
            if matches!(c.state, ContainerState::Running | ContainerState::Created) {
                self.stop_container(&c.id, 0).await?;
            }
        }
        // NotReady is recorded before the teardown: a crash in the middle of it must not
        // leave a pod listed Ready without its veth, whose address may be handed to
        // another pod (recovery finishes the teardown of a NotReady pod).
        if rec.state != PodState::NotReady {
            rec.state = PodState::NotReady;
            self.save_pod(&rec).await?;
        }
        self.teardown_pod(&rec).await;
        if let Some(s) = self.shim(&rec.id).await.ok().flatten() {
            if self.pod_containers(&rec.id).is_empty() {
                s.shutdown().await;
            }
        }
        tracing::info!(pod = %rec.id, "pod sandbox stopped");
        Ok(())
    }
}
