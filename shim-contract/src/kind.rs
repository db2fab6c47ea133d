//! The error kinds a shim reports and the ttrpc status codes that carry them.

/// What kind of failure a shim request met, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No such container or process (or the process already finished and was deleted).
    NotFound,
    /// A container or exec with this id exists already.
    AlreadyExists,
    /// The request is malformed (bad bundle, bad annotation, undecodable payload).
    InvalidArgument,
    /// The process is not in a state where the request can run.
    FailedPrecondition,
    /// The shim does not implement the request (checkpoint, restore).
    Unimplemented,
    /// The request did not finish before its deadline.
    DeadlineExceeded,
    /// The shim could not be reached (connection refused or lost).
    Unavailable,
    /// Anything else: the runtime, stdio set-up or the kernel failed.
    Internal,
}

/// The one table: every kind and its ttrpc code.
const TABLE: [(Kind, ttrpc::Code); 8] = [
    (Kind::NotFound, ttrpc::Code::NOT_FOUND),
    (Kind::AlreadyExists, ttrpc::Code::ALREADY_EXISTS),
    (Kind::InvalidArgument, ttrpc::Code::INVALID_ARGUMENT),
    (Kind::FailedPrecondition, ttrpc::Code::FAILED_PRECONDITION),
    (Kind::Unimplemented, ttrpc::Code::UNIMPLEMENTED),
    (Kind::DeadlineExceeded, ttrpc::Code::DEADLINE_EXCEEDED),
    (Kind::Unavailable, ttrpc::Code::UNAVAILABLE),
    (Kind::Internal, ttrpc::Code::INTERNAL),
];

impl Kind {
    /// The ttrpc code the shim sends for this kind.
    pub fn code(self) -> ttrpc::Code {
        TABLE
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, c)| *c)
            .unwrap_or(ttrpc::Code::INTERNAL)
    }

    /// The kind a client reads from a ttrpc code (codes outside the table: `Internal`).
    pub fn from_code(code: ttrpc::Code) -> Kind {
        TABLE
            .iter()
            .find(|(_, c)| *c == code)
            .map(|(k, _)| *k)
            .unwrap_or(Kind::Internal)
    }

    /// The kind of any ttrpc failure a client sees: a status's code, and `Unavailable`
    /// for a transport failure (no status: the shim is gone or unreachable).
    pub fn of_error(e: &ttrpc::Error) -> Kind {
        match e {
            ttrpc::Error::RpcStatus(s) => Kind::from_code(s.code()),
            _ => Kind::Unavailable,
        }
    }

    /// A ttrpc status error of this kind with `message`.
    pub fn status(self, message: impl Into<String>) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(self.code(), message.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_the_trip() {
        for (kind, code) in TABLE {
            assert_eq!(kind.code(), code);
            assert_eq!(Kind::from_code(code), kind);
            assert_eq!(Kind::of_error(&kind.status("m")), kind);
        }
        assert_eq!(Kind::from_code(ttrpc::Code::DATA_LOSS), Kind::Internal);
        assert_eq!(
            Kind::of_error(&ttrpc::Error::LocalClosed),
            Kind::Unavailable
        );
    }
}
