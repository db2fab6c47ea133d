//! Wiring: the services crustd serves on its unix socket, and the socket itself (refused
//! while another live server answers on it, created with mode 0600, a stale file replaced,
//! removed again on shutdown only while it is still the one crustd created). Every accepted
//! connection goes through [`authority::AuthorityFix`], so clients that send their socket
//! path as `:authority` (kubelet up to 1.30, grpc-python, ...) are served too.
//!
//! Shutdown: [`serve`] stops accepting, tells the calls through [`Closing`] (calls that
//! never end by themselves, GetContainerEvents, end on it with Unavailable), and waits for
//! the calls in flight at most [`DRAIN_LIMIT`]; a graceful drain with an open event stream
//! (kubelet's evented PLEG keeps one) would otherwise wait forever.

pub mod authority;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crust_daemon::images::Images;
use crust_daemon::runtime::Runtime;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt as _;
use tower::layer::util::{Identity, Stack};

use crate::image::ImageServer;
use crate::import::ImportServer;
use crate::metrics::Metrics;
use crate::observe::ObserveLayer;
use crate::runtime::RuntimeServer;
use crate::streaming::StreamingServer;

/// Serving failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be set up.
    #[error("listen on {path}")]
    Listen {
        /// The socket.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Another server answers on the socket.
    #[error("another server answers on socket {path}; stop it or choose another --listen")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// The gRPC server failed.
    #[error("serve")]
    Serve(#[source] tonic::transport::Error),
}

/// The routes crustd serves, every call observed by [`ObserveLayer`].
pub type Routes = tonic::transport::server::Router<Stack<ObserveLayer, Identity>>;

/// How long [`serve`] waits, once shutdown began, for the calls still in flight (a pull,
/// an ExecSync, a client that never finishes its request) before it stops without them.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Shutdown as the calls see it: [`Closing::closed`] resolves once crustd began to shut
/// down (or the [`CloseHandle`] is gone).
#[derive(Clone, Debug)]
pub struct Closing(tokio::sync::watch::Receiver<bool>);

/// Starts shutdown for every [`Closing`] made with it (see [`closing`]).
#[derive(Debug)]
pub struct CloseHandle(tokio::sync::watch::Sender<bool>);

/// A new shutdown signal: the handle for [`serve`], the receiver for the services.
pub fn closing() -> (CloseHandle, Closing) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    (CloseHandle(tx), Closing(rx))
}

impl Closing {
    /// Resolves once shutdown began.
    pub async fn closed(&mut self) {
        // An error means the handle is gone: that is shutdown too.
        let _ = self.0.wait_for(|closing| *closing).await;
    }
}

/// Largest gRPC message crustd reads or writes (kubelet's CRI client limit).
pub const MAX_MSG: usize = 16 * 1024 * 1024;

/// Every service crustd serves, over the core services; `streaming` serves the URLs of
/// Exec, Attach and PortForward; every call is logged (and counted in `metrics`, if given)
/// by [`ObserveLayer`].
pub fn router(
    images: Arc<Images>,
    runtime: Arc<Runtime>,
    streaming: Option<StreamingServer>,
    metrics: Option<Arc<Metrics>>,
    closing: Closing,
) -> Routes {
    // h2's default max frame size and header table size are kept: the authority adapter
    // (`authority`) frames and decodes with them.
    tonic::transport::Server::builder()
        .layer(ObserveLayer::new(metrics))
        .add_service(
            RuntimeServiceServer::new(RuntimeServer::new(
                runtime,
                images.clone(),
                streaming,
                closing,
            ))
            .max_decoding_message_size(MAX_MSG)
            .max_encoding_message_size(MAX_MSG),
        )
        .add_service(
            ImageServiceServer::from_arc(Arc::new(ImageServer::new(images.clone())))
                .max_decoding_message_size(MAX_MSG)
                .max_encoding_message_size(MAX_MSG),
        )
        .add_service(ImportServer::new(images))
}

/// Refuses `path` if a live server answers on it (a stale socket file is fine: [`bind`]
/// replaces it). A server that accepts no connection within a second counts as live.
pub async fn ensure_free(path: &Path) -> Result<(), Error> {
    let connect = tokio::net::UnixStream::connect(path);
    match tokio::time::timeout(std::time::Duration::from_secs(1), connect).await {
        Ok(Err(_)) => Ok(()),
        Ok(Ok(_)) | Err(_) => Err(Error::InUse { path: path.into() }),
    }
}

/// The socket file crustd bound: removed on drop if the path still holds that very file
/// (same device and inode), never a socket someone else put there since.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl SocketFile {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.id => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove socket");
                }
            }
            Ok(_) => tracing::warn!(
                socket = %self.path.display(),
                "socket was replaced by another process: left in place"
            ),
            Err(_) => {}
        }
    }
}

/// Binds the unix socket at `path` with mode 0600, replacing a stale file.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile), Error> {
    let err = |source| Error::Listen {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let l = UnixListener::bind(path).map_err(err)?;
    let m = std::fs::symlink_metadata(path).map_err(err)?;
    let file = SocketFile {
        path: path.into(),
        id: (m.dev(), m.ino()),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok((l, file))
}

/// Serves `router` on `listener` until `shutdown` resolves, then closes `close` and drains
/// (at most [`DRAIN_LIMIT`]), then removes the socket (if it is still `socket`).
pub async fn serve(
    router: Routes,
    listener: UnixListener,
    socket: SocketFile,
    shutdown: impl std::future::Future<Output = ()>,
    close: CloseHandle,
) -> Result<(), Error> {
    let incoming = UnixListenerStream::new(listener);
    let mut draining = Closing(close.0.subscribe());
    let shutdown = async move {
        shutdown.await;
        close.0.send_replace(true);
    };
    let r = if authority::enabled() {
        let incoming = incoming.map(|c| c.map(authority::AuthorityFix::new));
        drain_bounded(
            router.serve_with_incoming_shutdown(incoming, shutdown),
            &mut draining,
        )
        .await
    } else {
        drain_bounded(
            router.serve_with_incoming_shutdown(incoming, shutdown),
            &mut draining,
        )
        .await
    };
    drop(socket);
    r.map_err(Error::Serve)
}

/// Runs `serving` to its end, or until [`DRAIN_LIMIT`] after shutdown began (the calls
/// still in flight then are dropped with their connections).
async fn drain_bounded(
    serving: impl std::future::Future<Output = Result<(), tonic::transport::Error>>,
    draining: &mut Closing,
) -> Result<(), tonic::transport::Error> {
    let limit = async {
        draining.closed().await;
        tokio::time::sleep(DRAIN_LIMIT).await;
    };
    tokio::select! {
        r = serving => r,
        () = limit => {
            tracing::warn!(limit = ?DRAIN_LIMIT, "calls still in flight at shutdown: stopping without them");
            Ok(())
        }
    }
}
