//! The seam between the streaming server and the container runtime.
//!
//! The server owns the protocols; a [`StreamingBackend`] only sees byte pipes. Contract for
//! implementations:
//! - `stdin` reads the client's input and reaches EOF when the client closes stdin (or
//!   vanishes). `stdout`/`stderr` are written by the backend; dropping or shutting them down
//!   ends the stream for the client. A write failing with `BrokenPipe` means the client is
//!   gone: stop copying and let the process go on (exec) or detach (attach).
//! - `resize` yields terminal sizes (tty only, protocol v3+); it closes with the connection.
//! - [`Stdio::client_gone`] resolves when the client's connection is gone, so long waits
//!   (attach to a quiet container) can end.
//! - `exec` returns the command's exit code (reported as code 3 for `exit 3`), or an error
//!   for a failure to run it at all; `port_forward` copies between `stream` and the pod's
//!   `port` until either side closes, and returns an error the client sees as text.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, watch};

/// An exec the CRI `Exec` RPC accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An attach the CRI `Attach` RPC accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    pub container_id: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A port-forward the CRI `PortForward` RPC accepted. `ports` may be empty: over SPDY the
/// client names ports per stream; over WebSocket they then come from the URL's `port` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardRequest {
    pub pod_sandbox_id: String,
    pub ports: Vec<u16>,
}

/// A terminal size as remotecommand sends it: `{"Width":80,"Height":24}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The pipes of one exec or attach session.
pub struct Stdio {
    pub tty: bool,
    pub stdin: Option<DuplexStream>,
    pub stdout: Option<DuplexStream>,
    pub stderr: Option<DuplexStream>,
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
    pub(crate) gone: watch::Receiver<bool>,
}

impl Stdio {
    /// Resolves once the client's connection is gone.
    pub async fn client_gone(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|g| *g).await;
    }

    /// A cloneable watch that turns true once the client's connection is gone.
    pub fn gone_watch(&self) -> watch::Receiver<bool> {
        self.gone.clone()
    }
}

/// Why a backend could not serve a session.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("container {0} is not running")]
    ContainerNotRunning(String),
    #[error("pod sandbox {0} not found")]
    SandboxNotFound(String),
    #[error("{operation} failed: {message}")]
    Failed { operation: String, message: String },
}

/// What the streaming server needs from the runtime. See the module docs for the contract.
pub trait StreamingBackend: Send + Sync + 'static {
    /// Runs `req.cmd` in the container wired to `io`; returns its exit code.
    fn exec(
        &self,
        req: ExecRequest,
        io: Stdio,
    ) -> impl Future<Output = Result<i32, BackendError>> + Send;

    /// Attaches `io` to the container's main process until the streams end.
    fn attach(
        &self,
        req: AttachRequest,
        io: Stdio,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Copies between `stream` and `port` inside the pod's network namespace.
    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        stream: DuplexStream,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}
