//! The shim's error type and the single place where errors become ttrpc statuses.
//!
//! Every failure of a Task request carries a [`Kind`] (not found, already exists, ...)
//! decided where it is raised; [`ShimError::into_ttrpc`] turns it into the ttrpc status
//! code of the daemon <-> shim contract's table ([`crust_shim_contract::Kind`], the codes
//! containerd's `errdefs` understands too).

use std::path::PathBuf;

pub use crust_shim_contract::Kind;

/// Errors of the shim's Task service and its helpers.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("exec {exec_id} of container {id} not found")]
    ExecNotFound { id: String, exec_id: String },
    #[error("container {0} already exists")]
    ContainerExists(String),
    #[error("exec {exec_id} already exists in container {id}")]
    ExecExists { id: String, exec_id: String },
    #[error("bundle {0} has no config.json")]
    MissingBundle(PathBuf),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("process {0} already finished")]
    ProcessFinished(String),
    #[error("process {id} is {state}, cannot {op}")]
    WrongState {
        id: String,
        state: &'static str,
        op: &'static str,
    },
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    #[error("runtime {command} failed for {id}: {message}")]
    Runtime {
        command: &'static str,
        id: String,
        message: String,
    },
    #[error("setting up stdio {uri}: {source}")]
    Stdio { uri: String, source: std::io::Error },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mounting rootfs at {path}: {source}")]
    Mount { path: PathBuf, source: nix::Error },
    #[error("decoding {what}: {message}")]
    Decode { what: &'static str, message: String },
    /// The error with its causes (it crosses the ttrpc boundary as text).
    #[error("idmapping the rootfs layers: {0}")]
    Idmap(String),
}

impl ShimError {
    /// The client-visible kind of this error.
    pub fn kind(&self) -> Kind {
        match self {
            Self::ContainerNotFound(_) | Self::ExecNotFound { .. } | Self::ProcessFinished(_) => {
                Kind::NotFound
            }
            Self::ContainerExists(_) | Self::ExecExists { .. } => Kind::AlreadyExists,
            Self::MissingBundle(_) | Self::InvalidRequest(_) | Self::Decode { .. } => {
                Kind::InvalidArgument
            }
            Self::WrongState { .. } => Kind::FailedPrecondition,
            Self::Unsupported(_) => Kind::Unimplemented,
            Self::Runtime { .. }
            | Self::Stdio { .. }
            | Self::Io { .. }
            | Self::Mount { .. }
            | Self::Idmap(_) => Kind::Internal,
        }
    }

    /// The ttrpc error sent to the client (the one place kinds become codes).
    pub fn into_ttrpc(self) -> ttrpc::Error {
        self.kind().status(self.to_string())
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl From<crust_idmap::IdmapError> for ShimError {
    fn from(e: crust_idmap::IdmapError) -> Self {
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        Self::Idmap(text)
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> Self {
        e.into_ttrpc()
    }
}

pub type Result<T> = std::result::Result<T, ShimError>;
