//! Error kinds shared by every module. Each module keeps its own `thiserror` enum named
//! after the failed operations; all of them can say which [`ErrorKind`] they are, and the
//! CRI front turns a kind into a gRPC status in exactly one place.

/// What class of failure an error is, independent of the module it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// The object to create exists already.
    AlreadyExists,
    /// The caller's input is malformed or refers to something unsupported.
    InvalidArgument,
    /// The system is not in a state where the operation can run (e.g. still in use).
    FailedPrecondition,
    /// A remote service (registry) could not be reached; retrying may help.
    Unavailable,
    /// The registry refused the credentials (or their absence).
    Unauthenticated,
    /// The registry answered that the credentials lack permission.
    PermissionDenied,
    /// Data that was fetched or stored does not match its digest or size.
    DataLoss,
    /// The operation did not finish in the time the caller allowed.
    DeadlineExceeded,
    /// The operation is not implemented (a shim's checkpoint or restore).
    Unimplemented,
    /// Anything else: a local I/O or database failure.
    Internal,
}

/// Implemented by every module error so callers can classify it.
pub trait Kind {
    /// The class of this error.
    fn kind(&self) -> ErrorKind;
}
