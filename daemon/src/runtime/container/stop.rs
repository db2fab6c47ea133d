//! StopContainer: the image's stop signal (SIGTERM by default), up to `timeout` seconds,
//! then SIGKILL to every process of the container. Stopping a stopped container is
//! success.

use std::time::Duration;

use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::shim::{watch, Exit};
use crate::runtime::types::ContainerState;
use crate::runtime::{now, Runtime};

/// How long to wait for the exit after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Signal number of a name like `SIGTERM`, `TERM` or `15`.
pub fn signal_number(s: &str) -> Option<u32> {
    if s.is_empty() {
        return Some(libc::SIGTERM as u32);
    }
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32 as u32)
}

impl Runtime {
    /// Stops container `id`, waiting up to `timeout` seconds before SIGKILL. An unknown id
    /// (never created, or already removed) is success: the CRI makes StopContainer
    /// idempotent, as containerd answers and critest checks.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let Ok(rec) = self.container(id) else {
            tracing::debug!(container = %id, "stop of an unknown container: nothing to do");
            return Ok(());
        };
        let _g = self.locks.lock(format!("ctr/{}", rec.id)).await;
        let Ok(rec) = self.container(&rec.id) else {
            return Ok(());
        };
        if matches!(rec.state, ContainerState::Exited) {
            return Ok(());
        }
        let shim = match self.shim(&rec.pod_id).await {
            Ok(Some(s)) => s,
            // No shim to ask: whatever is left of the container is killed and cleaned
            // through the runtime (the processes outlive their shim).
            _ => return self.reap_orphan_task(&rec).await,
        };
        if rec.state == ContainerState::Running && timeout > 0 {
            let sig = signal_number(&rec.stop_signal).unwrap_or(libc::SIGTERM as u32);
            match shim.kill(&rec.id, "", sig, false).await {
                Ok(()) => {
                    let t = Duration::from_secs(timeout as u64);
                    if let Ok(Ok(exit)) = tokio::time::timeout(t, shim.wait(&rec.id, "")).await {
                        return self.record_exit(&rec.id, exit).await;
                    }
                }
                Err(e) => tracing::debug!(container = %rec.id, error = %e, "stop signal"),
            }
        }
        if let Err(e) = shim.kill(&rec.id, "", libc::SIGKILL as u32, true).await {
            tracing::debug!(container = %rec.id, error = %e, "SIGKILL");
        }
        match tokio::time::timeout(KILL_WAIT, shim.wait(&rec.id, "")).await {
            Ok(Ok(exit)) => self.record_exit(&rec.id, exit).await,
            Ok(Err(e)) if watch::socket_dead(shim.address()) => {
                // The shim died: its container lives on unless killed through the runtime.
                tracing::warn!(container = %rec.id, error = %e, "the pod's shim is dead");
                self.shim_died_later(&rec.pod_id, shim.conn_id());
                self.reap_orphan_task(&rec).await
            }
            Ok(Err(e)) => {
                // The shim no longer knows the task: it is gone.
                tracing::warn!(container = %rec.id, error = %e, "wait after SIGKILL");
                self.record_exit(
                    &rec.id,
                    Exit {
                        status: 128 + libc::SIGKILL as u32,
                        at: now(),
                    },
                )
                .await
            }
            Err(_) => Err(RuntimeError::Timeout {
                op: "stop container",
                id: rec.id,
                secs: KILL_WAIT.as_secs(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(signal_number(""), Some(15));
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("quit"), Some(3));
        assert_eq!(signal_number("10"), Some(10));
        assert_eq!(signal_number("SIGNOPE"), None);
    }
}
