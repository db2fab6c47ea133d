//! crustd's streaming server: [`crust_streaming`]'s protocols over the core runtime.
//!
//! [`Backend`] implements [`StreamingBackend`] by handing the session's byte pipes to
//! `Runtime::exec_stream`, `Runtime::attach` and `Runtime::port_forward` (the core never sees
//! the wire protocols); [`start`] binds the server from the `[streaming]` config. The CRI
//! `Exec`/`Attach`/`PortForward` RPCs (in [`crate::runtime`]) validate against the runtime
//! and return a URL from the running [`StreamingServer`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crust_daemon::error::Kind as _;
use crust_daemon::runtime::{Runtime, RuntimeError, StreamIo, TermSize};
use crust_daemon::ErrorKind;
use crust_streaming::{
    AttachRequest, BackendError, ExecRequest, Stdio, StreamingBackend, TerminalSize,
};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// The running streaming server crustd hands URLs out of.
pub type StreamingServer = crust_streaming::Server<Backend>;

/// Default address: loopback, a free port.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:0";
/// Default token lifetime (kubelet's).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);

/// The runtime as a [`StreamingBackend`].
pub struct Backend {
    rt: Arc<Runtime>,
}

impl Backend {
    /// Serves sessions on `rt`.
    pub fn new(rt: Arc<Runtime>) -> Self {
        Self { rt }
    }
}

/// Starts the streaming server on `addr` (port 0: any free port); URLs use `base_url`
/// when given (e.g. when the address is reached through a proxy), else the bound address.
pub async fn start(
    rt: Arc<Runtime>,
    addr: SocketAddr,
    base_url: Option<String>,
    token_ttl: Duration,
) -> Result<StreamingServer, crust_streaming::ServerError> {
    let cfg = crust_streaming::Config {
        addr,
        base_url,
        token_ttl,
        ..Default::default()
    };
    crust_streaming::Server::start(cfg, Arc::new(Backend::new(rt))).await
}

fn backend_error(e: RuntimeError) -> BackendError {
    match e {
        RuntimeError::ContainerNotFound(id) => BackendError::ContainerNotFound(id),
        RuntimeError::PodNotFound(id) => BackendError::SandboxNotFound(id),
        RuntimeError::WrongState {
            what: "container",
            id,
            ..
        } => BackendError::ContainerNotRunning(id),
        e => BackendError::Failed {
            operation: match e.kind() {
                ErrorKind::Unavailable => "streaming",
                _ => "runtime",
            }
            .into(),
            message: crate::status::message(&e),
        },
    }
}

/// Turns the protocol layer's pipes into the core's [`StreamIo`].
fn stream_io(io: Stdio) -> StreamIo {
    let gone = io.gone_watch();
    let resize = io.resize.map(|mut rx| {
        let (tx, out) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(TerminalSize { width, height }) = rx.recv().await {
                if tx.send(TermSize { width, height }).await.is_err() {
                    break;
                }
            }
        });
        out
    });
    StreamIo {
        tty: io.tty,
        stdin: io
            .stdin
            .map(|s| Box::new(s) as crust_daemon::runtime::Input),
        stdout: io
            .stdout
            .map(|s| Box::new(s) as crust_daemon::runtime::Output),
        stderr: io
            .stderr
            .map(|s| Box::new(s) as crust_daemon::runtime::Output),
        resize,
        gone,
    }
}

impl StreamingBackend for Backend {
    async fn exec(&self, req: ExecRequest, io: Stdio) -> Result<i32, BackendError> {
        self.rt
            .exec_stream(&req.container_id, req.cmd, stream_io(io))
            .await
            .map_err(backend_error)
    }

    async fn attach(&self, req: AttachRequest, io: Stdio) -> Result<(), BackendError> {
        self.rt
            .attach(&req.container_id, stream_io(io))
            .await
            .map_err(backend_error)
    }

    async fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        stream: DuplexStream,
    ) -> Result<(), BackendError> {
        self.rt
            .port_forward(&pod_sandbox_id, port, stream)
            .await
            .map_err(backend_error)
    }
}
