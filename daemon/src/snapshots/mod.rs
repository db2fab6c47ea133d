//! Snapshots: layered filesystem trees, keyed by name, as containerd's snapshotter.
//!
//! The contract ([`Snapshotter`], checked by [`conformance`]):
//! - [`Snapshotter::prepare`] creates an *active* (writable) snapshot `key` on top of the
//!   committed snapshot `parent` (or empty) and returns the mounts that assemble it;
//!   `key` must be new ([`ErrorKind::AlreadyExists`]), `parent` must exist and be committed
//!   ([`ErrorKind::NotFound`] / [`ErrorKind::FailedPrecondition`]);
//! - [`Snapshotter::commit`] turns active `key` into committed `name` (same contents, same
//!   parent); committed snapshots are immutable;
//! - [`Snapshotter::remove`] deletes a snapshot that has no children
//!   ([`ErrorKind::FailedPrecondition`] otherwise);
//! - [`Snapshotter::mounts`] returns the mounts of an active snapshot again.
//!
//! Image layers are committed under their chain ID; a container's writable layer is an
//! active snapshot prepared on the image's top chain ID. Layer tarballs are applied to an
//! active snapshot with [`unpack::apply_layer`], which never writes outside it.

mod overlay;
pub mod unpack;
pub mod view;

use std::path::PathBuf;

pub use overlay::OverlaySnapshotter;
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
#[cfg(test)]
use crate::error::Kind as _;

/// A mount that (with the others of the list, in order) assembles a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Filesystem type: `bind` or `overlay`.
    pub kind: String,
    /// Mount source.
    pub source: String,
    /// Mount options (`-o`), e.g. `lowerdir=…`, `upperdir=…`, `workdir=…` or `rbind`.
    pub options: Vec<String>,
}

impl Mount {
    /// The option `name=value`'s value, if present.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
    }
}

/// Active or committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotKind {
    /// Writable, not yet committed.
    Active,
    /// Immutable.
    Committed,
}

/// What a snapshotter knows about one snapshot (also its metadata record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The snapshot's key or committed name.
    pub key: String,
    /// Internal id (directory name).
    pub id: u64,
    /// Active or committed.
    pub kind: SnapshotKind,
    /// The committed snapshot below, if any.
    pub parent: Option<String>,
    /// Creation time, seconds since the epoch.
    pub created: u64,
}

/// Snapshot failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such snapshot.
    #[error("snapshot {0} not found")]
    NotFound(String),
    /// The key or name is taken.
    #[error("snapshot {0} already exists")]
    AlreadyExists(String),
    /// The parent of a prepare is not committed.
    #[error("parent snapshot {0} is not committed")]
    ParentNotCommitted(String),
    /// Commit of a snapshot that is not active.
    #[error("snapshot {0} is not active")]
    NotActive(String),
    /// Removal of a snapshot with children.
    #[error("snapshot {key} has {children} child snapshot(s)")]
    HasChildren {
        /// The snapshot.
        key: String,
        /// How many.
        children: usize,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] crate::metadata::Error),
}

impl crate::error::Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::ParentNotCommitted(_) | Error::NotActive(_) | Error::HasChildren { .. } => {
                ErrorKind::FailedPrecondition
            }
            Error::Io { .. } => ErrorKind::Internal,
            Error::Metadata(e) => e.kind(),
        }
    }
}

/// Disk usage of a tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes used.
    pub bytes: u64,
    /// Inodes used.
    pub inodes: u64,
}

/// A snapshot backend. See the module doc for the contract.
pub trait Snapshotter: Send + Sync {
    /// Creates active snapshot `key` on `parent`; returns its mounts.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, Error>;
    /// Mounts of active snapshot `key`.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, Error>;
    /// Commits active `key` as `name`.
    fn commit(&self, name: &str, key: &str) -> Result<(), Error>;
    /// Removes `key` (active or committed) if it has no children.
    fn remove(&self, key: &str) -> Result<(), Error>;
    /// Information about `key`.
    fn stat(&self, key: &str) -> Result<Info, Error>;
    /// Every snapshot.
    fn list(&self) -> Result<Vec<Info>, Error>;
    /// Disk usage of the snapshot's own layer (not its parents).
    fn usage(&self, key: &str) -> Result<Usage, Error>;
}

/// Conformance suite: every [`Snapshotter`] runs it in its tests.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    pub(crate) fn run<S: Snapshotter>(s: &S) {
        let m = s.prepare("a-active", None).unwrap();
        assert!(!m.is_empty());
        assert_eq!(
            s.prepare("a-active", None).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            s.prepare("x", Some("nope")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            s.prepare("x", Some("a-active")).unwrap_err().kind(),
            ErrorKind::FailedPrecondition
        );
        assert_eq!(s.mounts("a-active").unwrap(), m);
        s.commit("a", "a-active").unwrap();
        assert_eq!(s.stat("a-active").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            s.commit("a", "a").unwrap_err().kind(),
            ErrorKind::FailedPrecondition
        );
        let a = s.stat("a").unwrap();
        assert_eq!(
            (a.kind, a.parent.as_deref()),
            (SnapshotKind::Committed, None)
        );

        let mb = s.prepare("b-active", Some("a")).unwrap();
        assert!(!mb.is_empty());
        s.commit("b", "b-active").unwrap();
        assert_eq!(s.stat("b").unwrap().parent.as_deref(), Some("a"));
        s.prepare("c", Some("b")).unwrap();
        assert_eq!(
            s.remove("a").unwrap_err().kind(),
            ErrorKind::FailedPrecondition
        );
        assert_eq!(
            s.remove("b").unwrap_err().kind(),
            ErrorKind::FailedPrecondition
        );
        let mut keys: Vec<_> = s.list().unwrap().into_iter().map(|i| i.key).collect();
        keys.sort();
        assert_eq!(keys, ["a", "b", "c"]);
        s.remove("c").unwrap();
        s.remove("b").unwrap();
        s.remove("a").unwrap();
        assert_eq!(s.remove("a").unwrap_err().kind(), ErrorKind::NotFound);
        assert!(s.list().unwrap().is_empty());
    }
}
