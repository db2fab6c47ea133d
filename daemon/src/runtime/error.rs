//! Errors of the runtime (pods, containers, tasks), each with its [`ErrorKind`].

use std::path::PathBuf;

use crate::error::{ErrorKind, Kind};

/// A [`RuntimeError::Invalid`] with `msg`.
pub(crate) fn invalid(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::Invalid(msg.into())
}

/// Runtime failures.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No pod sandbox with this id (or unique prefix).
    #[error("pod sandbox {0} not found")]
    PodNotFound(String),
    /// No container with this id (or unique prefix).
    #[error("container {0} not found")]
    ContainerNotFound(String),
    /// A pod with the same name/uid/namespace/attempt exists.
    #[error("pod sandbox {name} already exists as {existing}")]
    PodExists {
        /// `name_namespace_uid_attempt`.
        name: String,
        /// The existing sandbox id.
        existing: String,
    },
    /// A container with the same name/attempt exists in the pod.
    #[error("container {name} already exists as {existing}")]
    ContainerExists {
        /// `name_attempt` in the pod.
        name: String,
        /// The existing container id.
        existing: String,
    },
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The pod is not ready.
    #[error("pod sandbox {0} is not ready")]
    PodNotReady(String),
    /// The pod still has running containers or the container is in the wrong state.
    #[error("{what} {id} is {state}: cannot {op}")]
    WrongState {
        /// "container" or "pod sandbox".
        what: &'static str,
        /// The id.
        id: String,
        /// Its state.
        state: String,
        /// The operation.
        op: &'static str,
    },
    /// A file-system operation failed.
    #[error("{op} {path}")]
    Io {
        /// Operation.
        op: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Metadata.
    #[error("runtime metadata")]
    Metadata(#[from] crate::metadata::Error),
    /// Image lookup or rootfs preparation.
    #[error("image {image}")]
    Image {
        /// Image spec.
        image: String,
        /// Cause.
        #[source]
        source: Box<crate::images::Error>,
    },
    /// A file crustd needs from the image (e.g. /etc/passwd) could not be read.
    #[error(transparent)]
    ImageFile(#[from] crate::snapshots::view::ViewError),
    /// Snapshot removal or usage.
    #[error("snapshot {key}")]
    Snapshot {
        /// Key.
        key: String,
        /// Cause.
        #[source]
        source: Box<crate::snapshots::Error>,
    },
    /// Pod networking.
    #[error("network of pod {pod}")]
    Network {
        /// Pod id.
        pod: String,
        /// Cause.
        #[source]
        source: Box<crate::network::NetworkError>,
    },
    /// A systemd unit (the systemd cgroup driver's scopes) could not be made.
    #[error("cgroup {what}: {message}")]
    Cgroup {
        /// The unit or cgroup.
        what: String,
        /// What failed.
        message: String,
    },
    /// Starting the init of a pod's shared PID namespace failed.
    #[error("starting the init of pod {pod}'s PID namespace: {message}")]
    PodInit {
        /// Pod id.
        pod: String,
        /// What failed.
        message: String,
    },
    /// Starting the pod's shim failed.
    #[error("start shim for {id}: {message}")]
    ShimStart {
        /// Pod id.
        id: String,
        /// What the shim said.
        message: String,
    },
    /// A shim call failed.
    #[error("shim {op} {id}: {message}")]
    Shim {
        /// The call.
        op: &'static str,
        /// Container id.
        id: String,
        /// Status code from the shim.
        code: ErrorKind,
        /// Message.
        message: String,
    },
    /// The operation timed out.
    #[error("{op} {id}: timeout {secs}s exceeded")]
    Timeout {
        /// Operation.
        op: &'static str,
        /// Id.
        id: String,
        /// Timeout.
        secs: u64,
    },
    /// Unsupported feature.
    #[error("{0} is not supported")]
    Unsupported(String),
    /// Checkpoint/restore cannot work on this node (why).
    #[error("checkpoint/restore needs CRIU: {0}")]
    NoCriu(String),
    /// Work handed to a blocking thread panicked there.
    #[error("{op} {id}: the blocking task failed: {message}")]
    Blocking {
        /// What was being done.
        op: &'static str,
        /// The container or pod id.
        id: String,
        /// The join error.
        message: String,
    },
    /// Port-forward could not reach the port in the pod.
    #[error("port-forward to port {port} of pod {pod}")]
    PortForward {
        /// Pod id.
        pod: String,
        /// Port.
        port: u16,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The client of a streaming session (exec, attach, port-forward) went away.
    #[error("{op} {id}: the client went away")]
    ClientGone {
        /// Operation.
        op: &'static str,
        /// Container or pod id.
        id: String,
    },
}

impl Kind for RuntimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::PodNotFound(_) | RuntimeError::ContainerNotFound(_) => {
                ErrorKind::NotFound
            }
            RuntimeError::PodExists { .. } | RuntimeError::ContainerExists { .. } => {
                ErrorKind::AlreadyExists
            }
            RuntimeError::Invalid(_) => ErrorKind::InvalidArgument,
            RuntimeError::PodNotReady(_) | RuntimeError::WrongState { .. } => {
                ErrorKind::FailedPrecondition
            }
            RuntimeError::Image { source, .. } => source.kind(),
            RuntimeError::Snapshot { source, .. } => source.kind(),
            RuntimeError::ImageFile(e) => e.kind(),
            RuntimeError::Network { source, .. } => source.kind(),
            RuntimeError::Shim { code, .. } => *code,
            RuntimeError::Timeout { .. } => ErrorKind::DeadlineExceeded,
            RuntimeError::Unsupported(_) => ErrorKind::InvalidArgument,
            RuntimeError::NoCriu(_) => ErrorKind::Unimplemented,
            RuntimeError::ClientGone { .. } | RuntimeError::PortForward { .. } => {
                ErrorKind::Unavailable
            }
            RuntimeError::Io { .. }
            | RuntimeError::Metadata(_)
            | RuntimeError::ShimStart { .. }
            | RuntimeError::PodInit { .. }
            | RuntimeError::Cgroup { .. }
            | RuntimeError::Blocking { .. } => ErrorKind::Internal,
        }
    }
}

/// Shorthand.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// An [`RuntimeError::Io`] builder.
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.into();
    move |source| RuntimeError::Io { op, path, source }
}
