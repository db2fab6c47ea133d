//! StartContainer, and the watcher that records a container's exit: one task per
//! running container holds the shim's `Wait` and writes the exit (code, time, reason
//! Completed / Error / OOMKilled) when it returns.

use std::sync::Arc;

use crate::runtime::cgroup;
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::shim::{watch, Exit, Shim};
use crate::runtime::types::{ContainerState, EventKind, PodState};
use crate::runtime::{now, Runtime};

/// Exit code and reason of a task that failed to start (as containerd).
const START_ERROR_CODE: i32 = 128;

impl Runtime {
    /// Starts created container `id`.
    pub async fn start_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let rec = self.container(id)?;
        let _g = self.locks.lock(format!("ctr/{}", rec.id)).await;
        let rec = self.container(&rec.id)?;
        if rec.state != ContainerState::Created {
            return Err(RuntimeError::WrongState {
                what: "container",
                id: rec.id,
                state: format!("{:?}", rec.state).to_lowercase(),
                op: "start",
            });
        }
        let pod = self.pod(&rec.pod_id)?;
        if pod.state != PodState::Ready {
            return Err(RuntimeError::PodNotReady(pod.id));
        }
        let shim = self
            .shim(&pod.id)
            .await?
            .ok_or_else(|| RuntimeError::PodNotReady(pod.id.clone()))?;
        // Taken before the call: a quick process can exit (as the shim stamps it) before
        // the call returns.
        let started = now();
        match shim.start(&rec.id, "").await {
            Ok(pid) => {
                self.update_container(&rec.id, |c| {
                    c.state = ContainerState::Running;
                    c.pid = pid;
                    c.started_at = started;
                })
                .await?;
                self.emit(&rec.id, &pod.id, EventKind::Started);
                self.watch_exit(shim, rec.id.clone());
                tracing::info!(container = %rec.id, pid, "container started");
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                self.update_container(&rec.id, |c| {
                    c.state = ContainerState::Exited;
                    c.finished_at = now();
                    c.exit_code = START_ERROR_CODE;
                    c.reason = "StartError".into();
                    c.message = msg;
                })
                .await?;
                self.emit(&rec.id, &pod.id, EventKind::Stopped);
                Err(e)
            }
        }
    }

    /// Spawns the exit watcher of running container `id`.
    pub(in crate::runtime) fn watch_exit(self: &Arc<Self>, shim: Shim, id: String) {
        let me = self.clone();
        tokio::spawn(async move {
            match shim.wait(&id, "").await {
                Ok(exit) => {
                    if let Err(e) = me.record_exit(&id, exit).await {
                        tracing::warn!(container = %id, error = %e, "record exit");
                    }
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "wait for exit");
                    if watch::socket_dead(shim.address()) {
                        if let Ok(rec) = me.container(&id) {
                            me.shim_died(&rec.pod_id, Some(shim.conn_id())).await;
                        }
                    }
                }
            }
        });
    }

    /// Records the shim's report of an OOM kill in container `id`'s cgroup (`TaskOOM`,
    /// see [`crate::runtime::shim::events`]). The shim sends it before it lets `Wait`
    /// return, so it is normally here before the exit; one that comes later still turns
    /// the reason of a SIGKILLed container into OOMKilled.
    pub(in crate::runtime) async fn oom_reported(&self, id: &str) {
        const SIGKILL_STATUS: i32 = 128 + libc::SIGKILL;
        let _g = self.locks.lock(format!("exit/{id}")).await;
        let Ok(rec) = self.container(id) else {
            tracing::debug!(container = %id, "TaskOOM for an unknown container");
            return;
        };
        let late = rec.state == ContainerState::Exited;
        if late && rec.exit_code != SIGKILL_STATUS {
            return;
        }
        let r = self
            .update_container(&rec.id, |c| {
                c.oom_reported = true;
                if late {
                    c.reason = "OOMKilled".into();
                }
            })
            .await;
        match r {
            Ok(_) => tracing::info!(container = %rec.id, late, "shim reported an OOM kill"),
            Err(e) => tracing::warn!(container = %rec.id, error = %e, "record OOM kill"),
        }
    }

    /// Records that `id` exited (once; later calls change nothing).
    pub(in crate::runtime) async fn record_exit(&self, id: &str, exit: Exit) -> Result<()> {
        // StopContainer's Wait and the exit watcher's both return for one exit: without
        // this lock both read the record before either wrote it, and each emitted Stopped.
        let _g = self.locks.lock(format!("exit/{id}")).await;
        let rec = self.container(id)?;
        if matches!(rec.state, ContainerState::Exited) {
            return Ok(());
        }
        let code = exit.status as i32;
        // The shim's TaskOOM, else the container's memory.events if it is still there.
        let (oom, oom_from) = if rec.oom_reported {
            (true, "TaskOOM")
        } else {
            (
                cgroup::oom_kills(&rec.cgroup_path).is_some_and(|n| n > 0),
                "container cgroup",
            )
        };
        let rec = self
            .update_container(id, |c| {
                c.state = ContainerState::Exited;
                c.finished_at = exit.at.max(c.started_at);
                c.exit_code = code;
                c.pid = 0;
                c.reason = if oom {
                    "OOMKilled".into()
                } else if code == 0 {
                    "Completed".into()
                } else {
                    "Error".into()
                };
            })
            .await?;
        self.emit(id, &rec.pod_id, EventKind::Stopped);
        tracing::info!(container = %id, code, reason = %rec.reason, oom_from, "container exited");
        Ok(())
    }
}
