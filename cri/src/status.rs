//! The one place where core errors become gRPC statuses: the kind picks the code, the
//! message is the error and its causes, so it names the image and what went wrong.

use crust_daemon::error::Kind;
use crust_daemon::ErrorKind;
use tonic::{Code, Status};

/// The gRPC code of an error kind.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::DataLoss => Code::DataLoss,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Internal => Code::Internal,
    }
}

/// `e` and its sources, joined with `: `.
pub fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Converts a core error into a status.
pub fn from_error<E: Kind + std::error::Error + 'static>(e: E) -> Status {
    let st = Status::new(code(e.kind()), message(&e));
    tracing::debug!(code = ?st.code(), message = st.message(), "request failed");
    st
}

/// A required field is missing or empty.
pub fn missing(field: &str) -> Status {
    Status::invalid_argument(format!("{field} is required"))
}
