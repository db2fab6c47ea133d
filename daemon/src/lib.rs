//! crust core: content store, images, snapshots, metadata (and later sandboxes, network,
//! tasks). Domain types only: no CRI protobuf types cross into this crate.
//!
//! The image half is wired like containerd's: [`content`] stores blobs by digest,
//! [`snapshots`] holds unpacked layers keyed by chain ID, [`metadata`] records images,
//! tags, snapshots and references in one transactional store, and [`images`] ties them
//! together (pull, import, list, remove). Every error that leaves the crate carries an
//! [`ErrorKind`] so the CRI front can map it to a gRPC code in one place.

pub mod cdi;
pub mod content;
pub mod digest;
pub mod error;
pub mod images;
pub mod metadata;
pub mod network;
pub mod nspin;
pub mod perms;
pub mod runtime;
pub mod snapshots;

pub use error::ErrorKind;
