//! Streamed exec (the CRI `Exec` behind crustd's streaming server): a process in a running
//! container whose stdin, stdout, stderr and terminal size are plain byte streams owned by
//! the caller ([`StreamIo`]; the wire protocol lives in crust-cri, never here).
//!
//! How: the pod's shim runs the process (`Exec` + `Start`) with FIFOs under
//! `<state>/exec/<exec-id>/` as its stdio; crustd holds their other ends, copies between
//! them and the caller's streams, and turns caller stdin EOF into `CloseIO`.
//!
//! Invariants:
//! - the FIFO files are unlinked as soon as the shim has opened them (after `Start`, or on
//!   any failure before), so a session never leaves files behind, whatever the client does;
//! - the shim's exec record is deleted by a task that waits for the process, so it is
//!   deleted once the process exits even when the client vanished; the process itself may
//!   keep running after its client vanished (as with containerd), with stdin closed;
//! - [`Runtime::exec_stream`] returns once the process exited and its output was copied
//!   (bounded by [`DRAIN`]), or as soon as the client is gone.

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::unix::pipe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::pipe::{
    client_gone, copy_in, copy_out, forward_resizes, open_reader, FifoDir, StreamIo,
};
use super::process::exec_process;
use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::{new_id, Runtime};

/// How long output is still copied after the process exited (a background child may
/// hold its stdout open forever).
pub const DRAIN: Duration = Duration::from_secs(2);

impl Runtime {
    /// Runs `cmd` in running container `id` wired to `stdio`; returns its exit code
    /// (128+signal when killed). See the module docs for the lifecycle.
    pub async fn exec_stream(&self, id: &str, cmd: Vec<String>, stdio: StreamIo) -> Result<i32> {
        if cmd.is_empty() {
            return Err(RuntimeError::Invalid("exec command is required".into()));
        }
        let (rec, shim) = self.running_with_shim(id, "exec").await?;
        let bytes = exec_process(&rec, cmd, stdio.tty)?;

        let t0 = std::time::Instant::now();
        let exec_id = format!("exec-{}", &new_id()[..24]);
        let dir = FifoDir::create(self.cfg.state.join("exec").join(&exec_id))?;
        let stdin_path = dir.fifo("stdin", stdio.stdin.is_some())?;
        let stdout_path = dir.fifo("stdout", stdio.stdout.is_some())?;
        let stderr_path = dir.fifo("stderr", stdio.stderr.is_some() && !stdio.tty)?;
        let mut stdin_w = match &stdin_path {
            Some(p) => Some(
                pipe::OpenOptions::new()
                    .read_write(true)
                    .open_sender(p)
                    .map_err(io("open fifo", p))?,
            ),
            None => None,
        };
        let stdout_r = stdout_path.as_deref().map(open_reader).transpose()?;
        let stderr_r = stderr_path.as_deref().map(open_reader).transpose()?;
        let uri = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        shim.exec_stdio(
            &rec.id,
            &exec_id,
            bytes,
            &uri(&stdin_path),
            &uri(&stdout_path),
            &uri(&stderr_path),
            stdio.tty,
        )
        .await?;
        let t_exec = t0.elapsed();
        if let Err(e) = shim.start(&rec.id, &exec_id).await {
            let _ = shim.delete(&rec.id, &exec_id).await;
            return Err(e);
        }
        let t_start = t0.elapsed();
        // The shim holds its ends now; the names are no longer needed.
        drop(dir);

        // Wait for the exit and delete the exec record, whatever happens to the client.
        let (exit_tx, exit_rx) = oneshot::channel();
        {
            let (shim, id, exec_id) = (shim.clone(), rec.id.clone(), exec_id.clone());
            tokio::spawn(async move {
                let r = shim.wait(&id, &exec_id).await;
                if let Err(e) = shim.delete(&id, &exec_id).await {
                    tracing::debug!(id, exec_id, error = %e, "delete exec");
                }
                let _ = exit_tx.send(r);
            });
        }

        let mut outputs: Vec<JoinHandle<()>> = Vec::new();
        if let (Some(r), Some(w)) = (stdout_r, stdio.stdout) {
            outputs.push(tokio::spawn(copy_out(r, w)));
        }
        if let (Some(r), Some(w)) = (stderr_r, stdio.stderr) {
            outputs.push(tokio::spawn(copy_out(r, w)));
        }
        // Input and resize tasks outlive a vanished client (its stdin EOF still closes the
        // process's stdin) but not the process: they are aborted once it has exited.
        let mut helpers: Vec<JoinHandle<()>> = Vec::new();
        if let (Some(mut w), Some(input)) = (stdin_w.take(), stdio.stdin) {
            let (shim, id, exec_id) = (shim.clone(), rec.id.clone(), exec_id.clone());
            helpers.push(tokio::spawn(async move {
                // The shim's CloseIO delivers what the FIFO holds before closing.
                copy_in(input, &mut w).await;
                if let Err(e) = shim.close_stdin(&id, &exec_id).await {
                    tracing::debug!(id, exec_id, error = %e, "close exec stdin");
                }
            }));
        }
        if let Some(rx) = stdio.resize {
            helpers.push(tokio::spawn(forward_resizes(
                shim.clone(),
                rec.id.clone(),
                exec_id.clone(),
                rx,
            )));
        }

        let exit = tokio::select! {
            r = exit_rx => r.map_err(|_| RuntimeError::Shim {
                op: "wait",
                id: rec.id.clone(),
                code: crate::error::ErrorKind::Unavailable,
                message: format!("exec {exec_id}: waiting task ended"),
            })??,
            _ = client_gone(stdio.gone.clone()) => {
                for o in &outputs {
                    o.abort();
                }
                return Err(RuntimeError::ClientGone { op: "exec in", id: rec.id });
            }
        };
        for h in &helpers {
            h.abort();
        }
        let drain = async {
            for o in &mut outputs {
                let _ = o.await;
            }
        };
        if tokio::time::timeout(DRAIN, drain).await.is_err() {
            for o in &outputs {
                o.abort();
            }
        }
        tracing::debug!(
            id = rec.id,
            exec_id,
            exec_ms = t_exec.as_secs_f64() * 1e3,
            started_ms = t_start.as_secs_f64() * 1e3,
            done_ms = t0.elapsed().as_secs_f64() * 1e3,
            "streamed exec finished"
        );
        Ok(exit.status as i32)
    }
}
