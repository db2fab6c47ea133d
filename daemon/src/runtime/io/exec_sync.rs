//! ExecSync: run a command in a running container, collect its output (each stream
//! capped at [`MAX_OUTPUT`]) and exit code; on timeout the process is killed and the
//! call fails with DeadlineExceeded.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::shim::Shim;
use crate::runtime::types::{ContainerRecord, ContainerState};
use crate::runtime::{new_id, Runtime};

/// Most bytes returned per stream (as containerd's 16 MiB gRPC limit allows).
pub const MAX_OUTPUT: u64 = 16 * 1024 * 1024 - 1024;

/// What ExecSync returns.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Exit code.
    pub exit_code: i32,
}

fn read_capped(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.take(MAX_OUTPUT).read_to_end(&mut v);
    }
    v
}

/// The OCI process JSON of an exec of `cmd` in `rec`: the container's own process (user,
/// env, cwd, capabilities…) with `args` and `terminal` replaced, and `TERM` set for a
/// terminal as containerd does.
pub(in crate::runtime) fn exec_process(
    rec: &ContainerRecord,
    cmd: Vec<String>,
    tty: bool,
) -> Result<Vec<u8>> {
    let cfg = rec.bundle.join("config.json");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).map_err(io("read", &cfg))?)
            .map_err(|e| RuntimeError::Invalid(format!("bundle spec {}: {e}", cfg.display())))?;
    let mut process = spec.get("process").cloned().unwrap_or_default();
    process["args"] = serde_json::json!(cmd);
    process["terminal"] = serde_json::json!(tty);
    if tty {
        crate::runtime::io::exec::add_term(&mut process);
    }
    serde_json::to_vec(&process).map_err(|e| RuntimeError::Invalid(format!("exec spec: {e}")))
}

impl Runtime {
    /// Container `id` if it is running, with its pod's shim; `op` names what a container in
    /// another state refuses (FailedPrecondition), a pod without a shim is PodNotReady.
    pub(in crate::runtime) async fn running_with_shim(
        &self,
        id: &str,
        op: &'static str,
    ) -> Result<(ContainerRecord, Shim)> {
        let rec = self.container(id)?;
        if rec.state != ContainerState::Running {
            return Err(RuntimeError::WrongState {
                what: "container",
                id: rec.id,
                state: format!("{:?}", rec.state).to_lowercase(),
                op,
            });
        }
        let shim = self
            .shim(&rec.pod_id)
            .await?
            .ok_or_else(|| RuntimeError::PodNotReady(rec.pod_id.clone()))?;
        Ok((rec, shim))
    }

    /// Runs `cmd` in container `id`; `timeout` zero means none.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecOutput> {
        if cmd.is_empty() {
            return Err(RuntimeError::Invalid("exec command is required".into()));
        }
        let (rec, shim) = self.running_with_shim(id, "exec").await?;
        let bytes = exec_process(&rec, cmd, false)?;
        let exec_id = format!("exec-{}", &new_id()[..24]);
        let dir = self.cfg.state.join("exec");
        let out = dir.join(format!("{exec_id}.out"));
        let err = dir.join(format!("{exec_id}.err"));
        let cleanup = || {
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(&err);
        };
        let r = async {
            shim.exec(
                &rec.id,
                &exec_id,
                bytes,
                &format!("file://{}", out.display()),
                &format!("file://{}", err.display()),
            )
            .await?;
            shim.start(&rec.id, &exec_id).await?;
            let waited = if timeout.is_zero() {
                Ok(shim.wait(&rec.id, &exec_id).await)
            } else {
                tokio::time::timeout(timeout, shim.wait(&rec.id, &exec_id)).await
            };
            match waited {
                Ok(r) => r.map(Some),
                Err(_) => {
                    let _ = shim
                        .kill(&rec.id, &exec_id, libc::SIGKILL as u32, false)
                        .await;
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), shim.wait(&rec.id, &exec_id))
                            .await;
                    Ok(None)
                }
            }
        }
        .await;
        let _ = shim.delete(&rec.id, &exec_id).await;
        let result = match r {
            Ok(Some(exit)) => Ok(ExecOutput {
                stdout: read_capped(&out),
                stderr: read_capped(&err),
                exit_code: exit.status as i32,
            }),
            Ok(None) => Err(RuntimeError::Timeout {
                op: "exec in container",
                id: rec.id.clone(),
                secs: timeout.as_secs(),
            }),
            Err(e) => Err(e),
        };
        cleanup();
        result
    }
}
