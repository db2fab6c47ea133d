//! Images: pull, import, list, inspect and remove, over the content store, the overlay
//! snapshotter and the metadata store.
//!
//! An image is identified by its config digest (its *id*) and known under names: tags
//! (`docker.io/library/busybox:latest`) and digest references (`…@sha256:<manifest or
//! index digest>`), all in the metadata `tags` table. An image record lists every blob and
//! chain ID it uses, and the `refs` table counts images per blob and per chain ID, so
//! removing an image frees exactly what no other image uses.
//!
//! Invariants:
//! - an image record is written in one transaction together with its names and reference
//!   counts, only after all its blobs are committed and all its layers are unpacked;
//! - pulls and imports hold the shared side of a GC lock for their whole run, removals the
//!   exclusive side, so a removal never frees content a pull is about to reference;
//! - concurrent pulls of one reference, blob or layer do the work once ([`Inflight`]);
//! - on open, leftovers of a crash (ingest files, half-unpacked or unreferenced snapshots,
//!   unreferenced blobs) are removed.

mod commit;
pub mod credhelper;
mod fetch;
pub mod hosts;
mod import;
pub mod manifest;
mod pull;
pub mod reference;
mod remove;
pub mod volume;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};

pub use hosts::{Credentials, RegistryConfig};
pub use manifest::ImageConfig;
pub use pull::install_crypto;
pub use reference::ImageRef;

use crate::content::{self, LocalStore, Manager as _, Provider as _};
use crate::digest::Digest;
use crate::error::{ErrorKind, Kind};
use crate::metadata::{self, Metadata, Read as _, Table};
use crate::snapshots::{self, unpack, Mount, OverlaySnapshotter, SnapshotKind, Snapshotter as _};

/// Image operation failures. Display names the image; the cause is the source chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference does not parse.
    #[error("invalid image reference {reference:?}: {why}")]
    InvalidReference {
        /// As given.
        reference: String,
        /// Why.
        why: String,
    },
    /// No such image.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// Talking to the registry failed.
    #[error("pull {image} from {endpoint}: {message}")]
    Registry {
        /// The image.
        image: String,
        /// The endpoint host.
        endpoint: String,
        /// The class of failure.
        kind: ErrorKind,
        /// The registry client's explanation.
        message: String,
    },
    /// A manifest, index or config is malformed or of an unsupported type.
    #[error("image {image}: {why}")]
    Malformed {
        /// The image.
        image: String,
        /// Why.
        why: String,
    },
    /// No index entry for this host.
    #[error("image {image}: no manifest for platform {platform}")]
    NoPlatform {
        /// The image.
        image: String,
        /// The platform looked for.
        platform: String,
    },
    /// The content store failed or a blob did not verify.
    #[error("image {image}: blob {digest}")]
    Content {
        /// The image.
        image: String,
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: content::Error,
    },
    /// A layer could not be applied.
    #[error("image {image}: unpack layer {layer}")]
    Unpack {
        /// The image.
        image: String,
        /// The layer digest.
        layer: String,
        /// The cause.
        #[source]
        source: unpack::Error,
    },
    /// An unpacked layer's digest is not the one in the config.
    #[error("image {image}: layer {layer} has diff ID {actual}, the config says {expected}")]
    DiffIdMismatch {
        /// The image.
        image: String,
        /// The layer.
        layer: String,
        /// From the config.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The snapshotter failed.
    #[error("image {image}: snapshot")]
    Snapshot {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: snapshots::Error,
    },
    /// An archive to import is unusable.
    #[error("import {path}: {why}")]
    Import {
        /// The archive.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A local file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] metadata::Error),
    /// A background task died.
    #[error("image task failed: {0}")]
    Task(String),
    /// Containers mount the image as a volume.
    #[error("image {image} is mounted as an image volume by container(s) {containers}")]
    InUse {
        /// The image id.
        image: String,
        /// The containers, comma-separated.
        containers: String,
    },
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. } | Error::Malformed { .. } => ErrorKind::InvalidArgument,
            Error::NotFound(_) | Error::NoPlatform { .. } => ErrorKind::NotFound,
            Error::Registry { kind, .. } => *kind,
            Error::Content { source, .. } => source.kind(),
            Error::Unpack { source, .. } => source.kind(),
            Error::DiffIdMismatch { .. } => ErrorKind::DataLoss,
            Error::Snapshot { source, .. } => source.kind(),
            Error::Import { .. } => ErrorKind::InvalidArgument,
            Error::InUse { .. } => ErrorKind::FailedPrecondition,
            Error::Io { .. } | Error::Metadata(_) | Error::Task(_) => ErrorKind::Internal,
        }
    }
}

/// One layer of an image record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Compressed blob digest.
    pub digest: String,
    /// Media type.
    pub media_type: String,
    /// Blob size.
    pub size: u64,
    /// Uncompressed digest.
    pub diff_id: String,
    /// Chain ID (snapshot name).
    pub chain_id: String,
}

/// An image as stored (metadata `images` table, JSON, schema 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Config digest.
    pub id: String,
    /// The platform manifest's digest.
    pub manifest_digest: String,
    /// What was resolved from the name: the index digest for multi-arch images, else the
    /// manifest digest. Digest references (repoDigests) use it.
    pub target_digest: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Every blob the image uses (index, manifest, config, layers).
    pub blobs: Vec<String>,
    /// Sum of blob sizes.
    pub size: u64,
    /// Parsed config.
    pub config: ImageConfig,
    /// When the record was written (unix seconds).
    pub created: u64,
}

/// An image with its names, as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The stored record.
    pub record: ImageRecord,
    /// Tags (`repo:tag`).
    pub repo_tags: Vec<String>,
    /// Digest references (`repo@sha256:…`).
    pub repo_digests: Vec<String>,
}

impl Image {
    /// The id (config digest).
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The chain ID of the top layer: the parent of a container's writable snapshot.
    pub fn top_chain_id(&self) -> Option<&str> {
        self.record.layers.last().map(|l| l.chain_id.as_str())
    }
}

/// Disk usage of the image filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsUsage {
    /// The directory measured (the snapshots root).
    pub mountpoint: PathBuf,
    /// Bytes used.
    pub used_bytes: u64,
    /// Inodes used.
    pub inodes_used: u64,
}

/// Per-key async locks: the second caller of a key waits for the first to finish.
#[derive(Debug, Default)]
pub struct Inflight(Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>);

impl Inflight {
    /// Locks `key` until the guard drops.
    pub async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, w| w.strong_count() > 0);
            match map.get(&key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key, Arc::downgrade(&m));
                    m
                }
            }
        };
        m.lock_owned().await
    }
}

/// The image service of one root directory.
#[derive(Debug)]
pub struct Images {
    root: PathBuf,
    content: Arc<LocalStore>,
    snapshotter: Arc<OverlaySnapshotter>,
    meta: Arc<Metadata>,
    registry: RegistryConfig,
    inflight: Arc<Inflight>,
    gc: tokio::sync::RwLock<()>,
    /// Bytes received from registries (manifests, configs, layers) since open.
    downloaded: Arc<std::sync::atomic::AtomicU64>,
    /// Images mounted by containers' image volumes.
    volume_holds: volume::VolumeHolds,
}

impl Images {
    /// Opens (creating) the image store under `root` (`content/`, `snapshots/`,
    /// `meta.redb`) and removes crash leftovers.
    pub fn open(root: &Path, registry: RegistryConfig) -> Result<Self, Error> {
        crate::perms::dir(root, crate::perms::TOP).map_err(|source| Error::Io {
            op: "create",
            path: root.into(),
            source,
        })?;
        let meta = Arc::new(Metadata::open(&root.join("meta.redb"))?);
        let content =
            Arc::new(
                LocalStore::open(&root.join("content")).map_err(|source| Error::Content {
                    image: String::new(),
                    digest: String::new(),
                    source,
                })?,
            );
        let snapshotter = Arc::new(
            OverlaySnapshotter::open(&root.join("snapshots"), meta.clone()).map_err(|source| {
                Error::Snapshot {
                    image: String::new(),
                    source,
                }
            })?,
        );
        let me = Self {
            root: root.to_path_buf(),
            content,
            snapshotter,
            meta,
            registry,
            inflight: Arc::new(Inflight::default()),
            gc: tokio::sync::RwLock::new(()),
            downloaded: Arc::default(),
            volume_holds: volume::VolumeHolds::default(),
        };
        me.collect_garbage()?;
        Ok(me)
    }

    /// Bytes received from registries (manifests, configs, layers) since the store was
    /// opened, failed pulls included; for the metrics.
    pub fn bytes_downloaded(&self) -> u64 {
        self.downloaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The snapshotter (containers prepare their writable layer with it).
    pub fn snapshotter(&self) -> Arc<OverlaySnapshotter> {
        self.snapshotter.clone()
    }

    /// The metadata store (shared with the container side).
    pub fn metadata(&self) -> Arc<Metadata> {
        self.meta.clone()
    }

    /// The content store.
    pub fn content(&self) -> Arc<LocalStore> {
        self.content.clone()
    }

    /// Every image, sorted by id.
    pub fn list(&self) -> Result<Vec<Image>, Error> {
        let tx = self.meta.read()?;
        let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, id) in tx.list(Table::Tags)? {
            names
                .entry(String::from_utf8_lossy(&id).into_owned())
                .or_default()
                .push(name);
        }
        Ok(tx
            .list_json::<ImageRecord>(Table::Images)?
            .into_iter()
            .map(|(id, rec)| with_names(rec, names.remove(&id).unwrap_or_default()))
            .collect())
    }

    /// Finds an image by id (`sha256:…` or bare hex), name (normalised), or unique id
    /// prefix, as containerd's CRI resolves kubelet's and crictl's image specs.
    pub fn get(&self, spec: &str) -> Result<Image, Error> {
        let tx = self.meta.read()?;
        let (id, _) = resolve(&tx, spec)?;
        let rec: ImageRecord = tx
            .get_json(Table::Images, &id)?
            .ok_or_else(|| Error::NotFound(spec.into()))?;
        let names = names_of(&tx, &id)?;
        Ok(with_names(rec, names))
    }

    /// The raw config JSON of an image (for verbose status).
    pub fn config_json(&self, image: &Image) -> Result<Vec<u8>, Error> {
        let d = Digest::parse(image.id()).map_err(|e| Error::Malformed {
            image: image.id().into(),
            why: e.to_string(),
        })?;
        self.content.read_all(&d).map_err(|source| Error::Content {
            image: image.id().into(),
            digest: d.to_string(),
            source,
        })
    }

    /// Prepares a container's writable snapshot `key` on top of image `spec`; returns the
    /// overlay mounts (the container side removes it with the snapshotter).
    pub fn prepare_rootfs(&self, key: &str, spec: &str) -> Result<Vec<Mount>, Error> {
        let img = self.get(spec)?;
        self.snapshotter
            .prepare(key, img.top_chain_id())
            .map_err(|source| Error::Snapshot {
                image: spec.into(),
                source,
            })
    }

    /// Disk usage of the snapshots.
    pub fn fs_usage(&self) -> Result<FsUsage, Error> {
        let mut used = snapshots::Usage::default();
        for info in self.snapshotter.list().map_err(|source| Error::Snapshot {
            image: String::new(),
            source,
        })? {
            if let Ok(u) = self.snapshotter.usage(&info.key) {
                used.bytes += u.bytes;
                used.inodes += u.inodes;
            }
        }
        Ok(FsUsage {
            mountpoint: self.root.join("snapshots"),
            used_bytes: used.bytes,
            inodes_used: used.inodes,
        })
    }

    /// After a failed pull or import: once no other pull runs, removes what it left
    /// unreferenced, so a failure leaves the store as it was.
    pub(crate) async fn clean_after_failure(&self) {
        let _gc = self.gc.write().await;
        if let Err(e) = self.collect_garbage() {
            tracing::warn!(error = %e, "cleanup after failure");
        }
    }

    /// Removes crash leftovers: ingest files, unpack snapshots that never committed,
    /// snapshots and blobs no image references. Runs at open, before any pull.
    fn collect_garbage(&self) -> Result<(), Error> {
        let snap_err = |source| Error::Snapshot {
            image: String::new(),
            source,
        };
        let content_err = |source| Error::Content {
            image: String::new(),
            digest: String::new(),
            source,
        };
        let n_ingest = self.content.clean_ingest().map_err(content_err)?;
        let tx = self.meta.read()?;
        let mut removed = 0;
        loop {
            let all = self.snapshotter.list().map_err(snap_err)?;
            let victim = all.iter().find(|i| {
                let has_children = all
                    .iter()
                    .any(|c| c.parent.as_deref() == Some(i.key.as_str()));
                let unused = match i.kind {
                    SnapshotKind::Active => i.key.starts_with("unpack-"),
                    SnapshotKind::Committed => {
                        Digest::parse(&i.key).is_ok()
                            && tx.refs(&format!("snap/{}", i.key)).unwrap_or(1) == 0
                    }
                };
                unused && !has_children
            });
            match victim {
                Some(v) => {
                    self.snapshotter.remove(&v.key).map_err(snap_err)?;
                    removed += 1;
                }
                None => break,
            }
        }
        let dirs = self.snapshotter.cleanup().map_err(snap_err)?;
        let mut blobs = 0;
        for b in self.content.list().map_err(content_err)? {
            if tx.refs(&format!("blob/{}", b.digest))? == 0 {
                self.content.delete(&b.digest).map_err(content_err)?;
                blobs += 1;
            }
        }
        if n_ingest + removed + dirs + blobs > 0 {
            tracing::info!(
                ingest = n_ingest,
                snapshots = removed,
                dirs,
                blobs,
                "removed leftovers"
            );
        }
        Ok(())
    }
}

fn with_names(record: ImageRecord, mut names: Vec<String>) -> Image {
    names.sort();
    let (repo_digests, repo_tags) = names
        .into_iter()
        .partition(|n| reference::is_digest_name(n));
    Image {
        record,
        repo_tags,
        repo_digests,
    }
}

fn names_of(tx: &impl metadata::Read, id: &str) -> Result<Vec<String>, Error> {
    Ok(tx
        .list(Table::Tags)?
        .into_iter()
        .filter(|(_, v)| v == id.as_bytes())
        .map(|(k, _)| k)
        .collect())
}

/// Resolves an image spec to `(id, Some(name))` when it matched a name, `(id, None)` when
/// it matched an id.
fn resolve(tx: &impl metadata::Read, spec: &str) -> Result<(String, Option<String>), Error> {
    let has = |id: &str| tx.get(Table::Images, id).map(|v| v.is_some());
    if Digest::parse(spec).is_ok() && has(spec)? {
        return Ok((spec.to_string(), None));
    }
    if spec.len() == 64 && has(&format!("sha256:{spec}"))? {
        return Ok((format!("sha256:{spec}"), None));
    }
    if let Ok(r) = ImageRef::parse(spec) {
        let name = r.name();
        if let Some(id) = tx.get(Table::Tags, &name)? {
            return Ok((String::from_utf8_lossy(&id).into_owned(), Some(name)));
        }
    }
    let prefix = spec.strip_prefix("sha256:").unwrap_or(spec);
    if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hits: Vec<String> = tx
            .list(Table::Images)?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k[7..].starts_with(prefix))
            .collect();
        if hits.len() == 1 {
            return Ok((hits[0].clone(), None));
        }
    }
    Err(Error::NotFound(spec.to_string()))
}

#[cfg(test)]
mod tests;
