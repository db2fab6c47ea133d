//! Server side of remotecommand (exec and attach), kubelet's semantics over SPDY
//! ([`spdy`]) and WebSocket ([`websocket`]).
//!
//! A session wires the client's streams to [`Stdio`] pipes handed to the backend, runs the
//! backend, waits for stdout/stderr to drain, then reports the outcome on the error stream:
//! a JSON [`Status`] from v4 on, the failure message as plain text before (nothing on
//! success). With a tty there is no stderr stream (kubelet drops it).

pub mod spdy;
pub mod websocket;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};

use crate::backend::{AttachRequest, ExecRequest, Stdio, StreamingBackend, TerminalSize};
use crate::status::Status;

/// Buffer of each stdio pipe.
pub(crate) const PIPE_BUFFER: usize = 64 * 1024;

/// The command a remotecommand session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(ExecRequest),
    Attach(AttachRequest),
}

impl Command {
    pub(crate) fn tty(&self) -> bool {
        match self {
            Command::Exec(r) => r.tty,
            Command::Attach(r) => r.tty,
        }
    }
    pub(crate) fn stdin(&self) -> bool {
        match self {
            Command::Exec(r) => r.stdin,
            Command::Attach(r) => r.stdin,
        }
    }
    pub(crate) fn stdout(&self) -> bool {
        match self {
            Command::Exec(r) => r.stdout,
            Command::Attach(r) => r.stdout,
        }
    }
    /// stderr is never separate with a tty.
    pub(crate) fn stderr(&self) -> bool {
        let e = match self {
            Command::Exec(r) => r.stderr,
            Command::Attach(r) => r.stderr,
        };
        e && !self.tty()
    }
}

/// Our ends of a session's pipes, and the backend's [`Stdio`].
pub(crate) struct Session {
    pub stdio: Stdio,
    pub stdin: Option<DuplexStream>,
    pub stdout: Option<DuplexStream>,
    pub stderr: Option<DuplexStream>,
    pub resize: Option<mpsc::Sender<TerminalSize>>,
    pub gone: watch::Sender<bool>,
}

pub(crate) fn session(cmd: &Command, resize: bool) -> Session {
    let pipe = |on: bool| {
        if on {
            let (a, b) = tokio::io::duplex(PIPE_BUFFER);
            (Some(a), Some(b))
        } else {
            (None, None)
        }
    };
    let (stdin, stdin_b) = pipe(cmd.stdin());
    let (stdout, stdout_b) = pipe(cmd.stdout());
    let (stderr, stderr_b) = pipe(cmd.stderr());
    let (resize_tx, resize_rx) = if resize && cmd.tty() {
        let (t, r) = mpsc::channel(16);
        (Some(t), Some(r))
    } else {
        (None, None)
    };
    let (gone, gone_rx) = watch::channel(false);
    Session {
        stdio: Stdio {
            tty: cmd.tty(),
            stdin: stdin_b,
            stdout: stdout_b,
            stderr: stderr_b,
            resize: resize_rx,
            gone: gone_rx,
        },
        stdin,
        stdout,
        stderr,
        resize: resize_tx,
        gone,
    }
}

/// Runs the backend and turns its outcome into the status kubelet reports.
pub(crate) async fn run<B: StreamingBackend>(backend: &B, cmd: Command, stdio: Stdio) -> Status {
    match cmd {
        Command::Exec(req) => {
            let argv = req.cmd.clone();
            match backend.exec(req, stdio).await {
                Ok(0) => Status::success(),
                Ok(code) => Status::exit_code(&argv, code),
                Err(e) => Status::internal(&format!("error executing command in container: {e}")),
            }
        }
        Command::Attach(req) => match backend.attach(req, stdio).await {
            Ok(()) => Status::success(),
            Err(e) => Status::internal(&format!("error attaching to container: {e}")),
        },
    }
}

/// The error-stream bytes for `status` under a protocol generation (`None`: write nothing).
pub(crate) fn error_payload(status: &Status, json: bool) -> Option<Vec<u8>> {
    if json {
        Some(status.to_json())
    } else if status.status == crate::status::STATUS_SUCCESS {
        None
    } else {
        Some(status.message.clone().into_bytes())
    }
}

/// Reads our end of an output pipe in chunks until the backend closes it.
pub(crate) async fn read_chunk(pipe: &mut DuplexStream, buf: &mut [u8]) -> Option<usize> {
    match pipe.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// Writes client input into our end of the stdin pipe; false once the backend stopped reading.
pub(crate) async fn feed(pipe: &mut DuplexStream, data: &[u8]) -> bool {
    pipe.write_all(data).await.is_ok()
}
