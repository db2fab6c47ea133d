//! Content store: immutable blobs addressed by digest.
//!
//! The contract mirrors containerd's content store, split in three roles:
//! - [`Provider`]: read committed blobs ([`Provider::info`], [`Provider::open`]);
//! - [`Ingester`]: write new blobs through a [`Writer`] that lands in an ingest area and
//!   becomes visible only by [`Writer::commit`], which verifies digest and size first;
//! - [`Manager`]: enumerate and delete blobs.
//!
//! Invariants every implementation keeps (checked by [`conformance`]):
//! - a blob readable under digest `d` hashes to `d`, always: partial, truncated or
//!   mismatching writes never become visible;
//! - committing a blob that already exists succeeds and leaves one copy;
//! - deleting a blob that does not exist is [`ErrorKind::NotFound`].
//!
//! Deduplication of concurrent writers of one digest is the caller's job (see
//! `images::Inflight`), as in containerd where a second writer gets "ref locked".

mod local;

use std::io;
use std::path::PathBuf;

pub use local::{LocalStore, LocalWriter};

use crate::digest::Digest;
use crate::error::{ErrorKind, Kind};

/// A committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// Content store failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No blob with this digest.
    #[error("blob {0} not found")]
    NotFound(Digest),
    /// A written blob's digest is not the expected one.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the caller said.
        expected: Digest,
        /// What was written.
        actual: Digest,
    },
    /// A written blob's size is not the expected one.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// What the caller said.
        expected: u64,
        /// What was written.
        actual: u64,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::DigestMismatch { .. } | Error::SizeMismatch { .. } => ErrorKind::DataLoss,
            Error::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Reads committed blobs.
pub trait Provider {
    /// Digest and size of a committed blob, [`Error::NotFound`] if absent.
    fn info(&self, digest: &Digest) -> Result<Info, Error>;
    /// Opens a committed blob for reading.
    fn open(&self, digest: &Digest) -> Result<std::fs::File, Error>;
    /// Reads a whole (small) blob, e.g. a manifest or config.
    fn read_all(&self, digest: &Digest) -> Result<Vec<u8>, Error>;
}

/// Writes new blobs.
pub trait Ingester {
    /// The writer type.
    type Writer: Writer;
    /// Starts a new write. Nothing is visible until [`Writer::commit`].
    fn writer(&self) -> Result<Self::Writer, Error>;
}

/// An in-progress write. Dropping it without commit discards the data.
pub trait Writer: io::Write {
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Digest of the bytes written so far.
    fn digest(&self) -> Digest;
    /// Verifies digest (and size if given) and makes the blob visible atomically.
    fn commit(self, expected: &Digest, size: Option<u64>) -> Result<Info, Error>;
}

/// Enumerates and deletes blobs.
pub trait Manager {
    /// Every committed blob.
    fn list(&self) -> Result<Vec<Info>, Error>;
    /// Deletes a committed blob.
    fn delete(&self, digest: &Digest) -> Result<(), Error>;
    /// Removes abandoned ingest files (from a crash); returns how many.
    fn clean_ingest(&self) -> Result<usize, Error>;
}

/// A full content store.
pub trait ContentStore: Provider + Ingester + Manager + Send + Sync {}
impl<T: Provider + Ingester + Manager + Send + Sync> ContentStore for T {}

/// Conformance suite: every [`ContentStore`] implementation runs it in its tests.
#[cfg(test)]
pub(crate) mod conformance {
    use std::io::{Read, Write};

    use super::*;

    pub(crate) fn run<S: ContentStore>(store: &S) {
        let data = b"hello content".to_vec();
        let d = Digest::of(&data);
        assert_eq!(store.info(&d).unwrap_err().kind(), ErrorKind::NotFound);

        // Wrong digest: nothing becomes visible.
        let mut w = store.writer().unwrap();
        w.write_all(&data).unwrap();
        let wrong = Digest::of(b"other");
        assert_eq!(
            w.commit(&wrong, None).unwrap_err().kind(),
            ErrorKind::DataLoss
        );
        assert!(store.info(&wrong).is_err());
        assert!(store.info(&d).is_err());

        // Wrong size.
        let mut w = store.writer().unwrap();
        w.write_all(&data).unwrap();
        assert_eq!(
            w.commit(&d, Some(3)).unwrap_err().kind(),
            ErrorKind::DataLoss
        );
        assert!(store.info(&d).is_err());

        // Dropped writer: nothing visible.
        let mut w = store.writer().unwrap();
        w.write_all(&data).unwrap();
        drop(w);
        assert!(store.info(&d).is_err());

        // Good write, twice.
        for _ in 0..2 {
            let mut w = store.writer().unwrap();
            w.write_all(&data[..4]).unwrap();
            w.write_all(&data[4..]).unwrap();
            assert_eq!(w.written(), data.len() as u64);
            let info = w.commit(&d, Some(data.len() as u64)).unwrap();
            assert_eq!(
                info,
                Info {
                    digest: d.clone(),
                    size: data.len() as u64
                }
            );
        }
        let mut back = Vec::new();
        store.open(&d).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(store.read_all(&d).unwrap(), data);
        assert_eq!(
            store.list().unwrap(),
            vec![Info {
                digest: d.clone(),
                size: data.len() as u64
            }]
        );
        assert_eq!(store.clean_ingest().unwrap(), 0);

        store.delete(&d).unwrap();
        assert_eq!(store.delete(&d).unwrap_err().kind(), ErrorKind::NotFound);
        assert!(store.list().unwrap().is_empty());
    }
}
