//! StopPodSandbox: stop every container of the pod (SIGKILL after the grace the caller
//! gives, 0 here as containerd does), tear down the network and namespaces. Idempotent:
//! an unknown id is success.

use crate::runtime::error::Result;
use crate::runtime::types::{ContainerState, PodState};
use crate::runtime::Runtime;

impl Runtime {
    /// Stops pod `id`. An unknown id is success: the CRI makes StopPodSandbox idempotent
    /// ("must not return an error if all relevant resources have already been reclaimed"),
    /// as containerd and CRI-O answer and critest checks.
    pub async fn stop_pod(&self, id: &str) -> Result<()> {
        let Ok(mut rec) = self.pod(id) else {
            tracing::debug!(pod = %id, "stop of an unknown pod sandbox: nothing to do");
            return Ok(());
        };
        let _g = self.locks.lock(format!("pod/{}", rec.id)).await;
        for c in self.pod_containers(&rec.id) {
            if matches!(c.state, ContainerState::Running | ContainerState::Created) {
                self.stop_container(&c.id, 0).await?;
            }
        }
        // NotReady is recorded before the teardown: a crash in the middle of it must not
        // leave a pod listed Ready without its veth, whose address may be handed to
        // another pod (recovery finishes the teardown of a NotReady pod).
        let transition = rec.state != PodState::NotReady;
        if transition {
            rec.state = PodState::NotReady;
            self.save_pod(&rec).await?;
        }
        self.teardown_pod(&rec).await;
        if let Some(s) = self.shim(&rec.id).await.ok().flatten() {
            if self.pod_containers(&rec.id).is_empty() {
                s.shutdown().await;
            }
        }
        // The lifecycle event is the transition: a stop of a stopped pod (RemovePodSandbox
        // stops first) logs no second "stopped" line.
        if transition {
            tracing::info!(pod = %rec.id, "pod sandbox stopped");
        } else {
            tracing::debug!(pod = %rec.id, "pod sandbox already stopped");
        }
        Ok(())
    }
}
