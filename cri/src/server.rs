//! Wiring: the services crustd serves on its unix socket, and the socket itself (created
//! with mode 0600, a stale file replaced, removed again on shutdown). Every accepted
//! connection goes through [`authority::AuthorityFix`], so clients that send their socket
//! path as `:authority` (kubelet up to 1.30, grpc-python, ...) are served too.

pub mod authority;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crust_daemon::images::Images;
use crust_daemon::runtime::Runtime;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt as _;

use crate::image::ImageServer;
use crate::import::ImportServer;
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
    /// The gRPC server failed.
    #[error("serve")]
    Serve(#[source] tonic::transport::Error),
}

/// Largest gRPC message crustd reads or writes (kubelet's CRI client limit).
pub const MAX_MSG: usize = 16 * 1024 * 1024;

/// Every service crustd serves, over the core services; `streaming` serves the URLs of
/// Exec, Attach and PortForward.
pub fn router(
    images: Arc<Images>,
    runtime: Arc<Runtime>,
    streaming: Option<StreamingServer>,
) -> tonic::transport::server::Router {
    // h2's default max frame size and header table size are kept: the authority adapter
    // (`authority`) frames and decodes with them.
    tonic::transport::Server::builder()
        .add_service(
            RuntimeServiceServer::new(RuntimeServer::new(runtime, images.clone(), streaming))
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

/// Binds the unix socket at `path` with mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, Error> {
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
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

/// Serves `router` on `listener` until `shutdown` resolves, then removes the socket.
pub async fn serve(
    router: tonic::transport::server::Router,
    listener: UnixListener,
    path: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let incoming = UnixListenerStream::new(listener);
    let r = if authority::enabled() {
        let incoming = incoming.map(|c| c.map(authority::AuthorityFix::new));
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    } else {
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    };
    let _ = std::fs::remove_file(path);
    r.map_err(Error::Serve)
}
