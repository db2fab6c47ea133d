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

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::shim::Shim;
use crate::runtime::{new_id, Runtime};

/// How long output is still copied after the process exited (a background child may
/// hold its stdout open forever).
pub const DRAIN: Duration = Duration::from_secs(2);

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// Input side of a session.
pub type Input = Box<dyn AsyncRead + Send + Unpin>;
/// Output side of a session.
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// The caller's ends of one exec or attach session. A `None` stream is not wanted.
pub struct StreamIo {
    /// Run with a pty (then only `stdout` carries output).
    pub tty: bool,
    /// Client input; EOF when the client closes stdin.
    pub stdin: Option<Input>,
    /// Where the process's stdout goes; a failing write means the client is gone.
    pub stdout: Option<Output>,
    /// Where the process's stderr goes.
    pub stderr: Option<Output>,
    /// Terminal sizes from the client (tty only).
    pub resize: Option<mpsc::Receiver<TermSize>>,
    /// Turns true once the client's connection is gone.
    pub gone: watch::Receiver<bool>,
}

/// Resolves once `gone` turns true (or its sender is dropped without saying so, which
/// means nobody will tell: never resolves then).
pub(crate) async fn client_gone(mut gone: watch::Receiver<bool>) {
    if gone.wait_for(|g| *g).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Creates a FIFO (mode 0600) at `path`.
pub(crate) fn mkfifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| io("mkfifo", path)(std::io::Error::from(e)))
}

/// Opens the read end of a FIFO without blocking (no writer needed yet).
pub(crate) fn open_reader(path: &Path) -> Result<pipe::Receiver> {
    pipe::OpenOptions::new()
        .open_receiver(path)
        .map_err(io("open fifo", path))
}

/// Copies `from` to `to` until EOF or a failed write, then shuts `to` down.
pub(crate) async fn copy_out(mut from: pipe::Receiver, mut to: Output) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Copies `from` into `to` until EOF or a failed read/write; leaves `to` open (the caller
/// closes the process's stdin with `CloseIO`).
pub(crate) async fn copy_in(mut from: Input, to: &mut pipe::Sender) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Forwards terminal sizes to the shim until the client stops sending them.
pub(crate) async fn forward_resizes(
    shim: Shim,
    id: String,
    exec_id: String,
    mut rx: mpsc::Receiver<TermSize>,
) {
    while let Some(sz) = rx.recv().await {
        if let Err(e) = shim
            .resize_pty(&id, &exec_id, sz.width.into(), sz.height.into())
            .await
        {
            tracing::debug!(id, exec_id, error = %e, "resize pty");
        }
    }
}

/// The FIFOs of one exec, `<state>/exec/<exec-id>/`; the directory is removed on drop.
pub(in crate::runtime) struct ExecDir {
    dir: PathBuf,
}

impl ExecDir {
    /// Creates the (empty) FIFO directory of `exec_id`.
    pub(in crate::runtime) fn create(state: &Path, exec_id: &str) -> Result<Self> {
        let dir = ExecDir {
            dir: state.join("exec").join(exec_id),
        };
        std::fs::create_dir_all(&dir.dir).map_err(io("create", &dir.dir))?;
        Ok(dir)
    }

    /// A new FIFO `name` in the directory when `on`.
    pub(in crate::runtime) fn fifo(&self, name: &str, on: bool) -> Result<Option<PathBuf>> {
        if !on {
            return Ok(None);
        }
        let p = self.dir.join(name);
        mkfifo(&p)?;
        Ok(Some(p))
    }
}

impl Drop for ExecDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Runtime {
    /// Runs `cmd` in running container `id` wired to `stdio`; returns its exit code
    /// (128+signal when killed). See the module docs for the lifecycle.
    pub async fn exec_stream(&self, id: &str, cmd: Vec<String>, stdio: StreamIo) -> Result<i32> {
        if cmd.is_empty() {
            return Err(RuntimeError::Invalid("exec command is required".into()));
        }
        let (rec, shim) = self.running_with_shim(id, "exec").await?;
        let bytes = crate::runtime::io::exec_sync::exec_process(&rec, cmd, stdio.tty)?;

        let t0 = std::time::Instant::now();
        let exec_id = format!("exec-{}", &new_id()[..24]);
        let dir = ExecDir::create(&self.cfg.state, &exec_id)?;
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

/// Adds `TERM=xterm` to a process's env unless it sets TERM (as containerd does for tty).
pub(in crate::runtime) fn add_term(process: &mut serde_json::Value) {
    let env = process
        .get("env")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    if env
        .iter()
        .any(|e| e.as_str().is_some_and(|s| s.starts_with("TERM=")))
    {
        return;
    }
    let mut env = env;
    env.push(serde_json::json!("TERM=xterm"));
    process["env"] = serde_json::Value::Array(env);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_added_once() {
        let mut p = serde_json::json!({"env": ["PATH=/bin"]});
        add_term(&mut p);
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "TERM=xterm"]));
        let mut p = serde_json::json!({"env": ["TERM=vt100"]});
        add_term(&mut p);
        assert_eq!(p["env"], serde_json::json!(["TERM=vt100"]));
    }

    #[tokio::test]
    async fn fifo_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        mkfifo(&p).unwrap();
        let r = open_reader(&p).unwrap();
        let mut w = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&p)
            .unwrap();
        let (client, mut ours) = tokio::io::duplex(1024);
        let copy = tokio::spawn(copy_out(r, Box::new(client)));
        copy_in(Box::new(&b"hello"[..]), &mut w).await;
        let mut got = [0u8; 5];
        ours.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        drop(w);
        copy.await.unwrap();
        let mut rest = Vec::new();
        ours.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
