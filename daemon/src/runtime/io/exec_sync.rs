//! ExecSync: run a command in a running container, collect its output and exit code.
//!
//! Invariants (CVE-2022-31030 class):
//! - output is read from FIFOs into memory, never written to a file: each stream keeps its
//!   first [`MAX_OUTPUT`] bytes (as containerd), the rest is read and dropped so the process
//!   never blocks on a full pipe; [`ExecOutput::truncate_to`] then fits both streams into
//!   one answer;
//! - the FIFOs under `<state>/exec/<exec-id>/` are unlinked as soon as the shim has them;
//! - the process does not outlive the call: on timeout it is killed and the call fails with
//!   DeadlineExceeded; when the caller goes away (the call's future is dropped, as tonic does
//!   when a client cancels) it is killed by a task the drop spawns; either way the shim's
//!   exec record is deleted.

use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::exec::DRAIN;
use super::pipe::FifoDir;
use super::process::exec_process;
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::shim::Shim;
use crate::runtime::{new_id, Runtime};

/// Most bytes kept per stream (containerd's cap).
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// How long a killed exec is waited for before its record is deleted anyway.
const KILL_WAIT: Duration = Duration::from_secs(5);

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

impl ExecOutput {
    /// Truncates the streams so that together they hold at most `total` bytes: each keeps
    /// at least half (or all it has, when shorter), the other gets what is left.
    pub fn truncate_to(&mut self, total: usize) {
        let (o, e) = (self.stdout.len(), self.stderr.len());
        if o + e <= total {
            return;
        }
        let half = total / 2;
        let keep_o = if e < half {
            total - e
        } else {
            half.max(total.saturating_sub(e))
        };
        let keep_o = keep_o.min(o);
        self.stdout.truncate(keep_o);
        self.stderr.truncate(total - keep_o);
    }
}

/// Reads `from` until EOF (or `stop` resolves), keeping the first `cap` bytes.
async fn capture(
    mut from: pipe::Receiver,
    cap: usize,
    stop: impl std::future::Future<Output = ()>,
) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            },
            _ = &mut stop => break,
        }
    }
    kept
}

/// An exec process in a shim that is killed (and its record deleted) unless
/// [`Self::delete`] ran: dropping the guard spawns the kill.
struct KillOnDrop {
    shim: Shim,
    id: String,
    exec_id: String,
    armed: bool,
}

impl KillOnDrop {
    async fn kill_and_delete(shim: &Shim, id: &str, exec_id: &str) {
        if let Err(e) = shim.kill(id, exec_id, libc::SIGKILL as u32, false).await {
            tracing::debug!(id, exec_id, error = %e, "kill exec");
        }
        let _ = tokio::time::timeout(KILL_WAIT, shim.wait(id, exec_id)).await;
        if let Err(e) = shim.delete(id, exec_id).await {
            tracing::debug!(id, exec_id, error = %e, "delete exec");
        }
    }

    /// Kills the process, waits for it (bounded) and deletes its record.
    async fn kill(mut self) {
        self.armed = false;
        Self::kill_and_delete(&self.shim, &self.id, &self.exec_id).await;
    }

    /// Deletes the record of the exited process.
    async fn delete(mut self) {
        self.armed = false;
        if let Err(e) = self.shim.delete(&self.id, &self.exec_id).await {
            tracing::debug!(id = self.id, exec_id = self.exec_id, error = %e, "delete exec");
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (shim, id, exec_id) = (
            self.shim.clone(),
            std::mem::take(&mut self.id),
            std::mem::take(&mut self.exec_id),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                tracing::info!(id, exec_id, "exec_sync caller gone: killing the process");
                h.spawn(async move { Self::kill_and_delete(&shim, &id, &exec_id).await });
            }
            Err(_) => tracing::warn!(id, exec_id, "exec left running: no runtime to kill it"),
        }
    }
}

impl Runtime {
    /// Runs `cmd` in container `id`; `timeout` zero means none. See the module docs.
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
        let dir = FifoDir::create(self.cfg.state.join("exec").join(&exec_id))?;
        let (out_path, out_r) = dir.reader("stdout")?;
        let (err_path, err_r) = dir.reader("stderr")?;
        shim.exec_stdio(&rec.id, &exec_id, bytes, "", &out_path, &err_path, false)
            .await?;
        let guard = KillOnDrop {
            shim: shim.clone(),
            id: rec.id.clone(),
            exec_id: exec_id.clone(),
            armed: true,
        };
        if let Err(e) = shim.start(&rec.id, &exec_id).await {
            guard.delete().await;
            return Err(e);
        }
        // The shim holds its ends now; the names are no longer needed.
        drop(dir);

        // Output is collected until EOF, or for DRAIN after the process ended (a background
        // child may hold its stdout open forever).
        let (ended_tx, ended_rx) = watch::channel(false);
        let stop = || {
            let mut rx = ended_rx.clone();
            async move {
                let _ = rx.wait_for(|e| *e).await;
                tokio::time::sleep(DRAIN).await;
            }
        };
        let waited = async {
            let wait = shim.wait(&rec.id, &exec_id);
            let r = if timeout.is_zero() {
                Some(wait.await)
            } else {
                tokio::time::timeout(timeout, wait).await.ok()
            };
            if r.is_none() {
                // Killed before the output is drained, so the pipes close.
                let _ = shim
                    .kill(&rec.id, &exec_id, libc::SIGKILL as u32, false)
                    .await;
            }
            let _ = ended_tx.send(true);
            r
        };
        let (waited, stdout, stderr) = tokio::join!(
            waited,
            capture(out_r, MAX_OUTPUT, stop()),
            capture(err_r, MAX_OUTPUT, stop()),
        );
        match waited {
            Some(Ok(exit)) => {
                guard.delete().await;
                Ok(ExecOutput {
                    stdout,
                    stderr,
                    exit_code: exit.status as i32,
                })
            }
            Some(Err(e)) => {
                guard.kill().await;
                Err(e)
            }
            None => {
                guard.kill().await;
                Err(RuntimeError::Timeout {
                    op: "exec in container",
                    id: rec.id.clone(),
                    secs: timeout.as_secs(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(o: usize, e: usize) -> ExecOutput {
        ExecOutput {
            stdout: vec![b'o'; o],
            stderr: vec![b'e'; e],
            exit_code: 0,
        }
    }

    #[test]
    fn truncation_fits_the_total() {
        for (o, e, total, want) in [
            (10, 10, 100, (10, 10)),
            (100, 100, 100, (50, 50)),
            (100, 10, 100, (90, 10)),
            (10, 100, 100, (10, 90)),
            (0, 300, 100, (0, 100)),
            (300, 0, 100, (100, 0)),
            (60, 60, 101, (50, 51)),
        ] {
            let mut x = out(o, e);
            x.truncate_to(total);
            assert_eq!((x.stdout.len(), x.stderr.len()), want, "{o} {e} {total}");
        }
    }

    #[tokio::test]
    async fn capture_keeps_the_cap_and_drains_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let dir = FifoDir::create(d.path().join("x")).unwrap();
        let (p, r) = dir.reader("f").unwrap();
        let mut w = pipe::OpenOptions::new().open_sender(&p).unwrap();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            // Far more than a pipe holds: blocks unless the reader keeps reading.
            for _ in 0..64 {
                w.write_all(&[b'x'; 64 * 1024]).await.unwrap();
            }
        });
        let got = capture(r, 1000, std::future::pending()).await;
        writer.await.unwrap();
        assert_eq!(got, vec![b'x'; 1000]);
    }
}
