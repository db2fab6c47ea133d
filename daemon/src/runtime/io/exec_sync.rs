//! ExecSync: run a command in a running container, collect its output (each stream
//! capped at [`MAX_OUTPUT`]) and exit code; on timeout the process is killed and the
//! call fails with DeadlineExceeded.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use super::process::exec_process;
use crate::runtime::error::{Result, RuntimeError};
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

impl Runtime {
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
