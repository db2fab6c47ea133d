//! The last steps shared by pull and import: unpacking an image's layers into snapshots
//! (once per chain ID) and recording the image with its names and reference counts in one
//! metadata transaction.
//!
//! Unpacking is split in two so that layers can be extracted in parallel (every layer is
//! extracted on its own into an empty directory anyway): [`Images::lock_layer`] takes the
//! chain ID's lock, and unless the snapshot exists [`Images::spawn_extract`] extracts the
//! layer (from the stored blob, or from the download as it streams in, see `fetch.rs`)
//! into a staging directory inside the snapshots root and checks its diff ID;
//! [`Images::install_layer`],
//! called bottom-up, prepares the snapshot on its (by then committed) parent, renames the
//! staged tree into it and commits it under the chain ID. A staging directory that is not
//! installed is deleted (on drop, or at the next start after a crash).

use std::io::Read;
use std::path::PathBuf;

use super::{Error, Image, ImageRecord, Images, LayerRecord};
use crate::content::{Manager as _, Provider as _};
use crate::digest::Digest;
use crate::metadata::{Read as _, Table, WriteTx};
use crate::snapshots::{unpack, SnapshotKind, Snapshotter as _};

/// What a removal or a moved tag released.
#[derive(Debug, Default)]
pub(super) struct Freed {
    pub blobs: Vec<String>,
    /// Chain IDs, top of each image first.
    pub snapshots: Vec<String>,
}

/// A staged, not yet installed layer tree; deleted on drop unless installed.
#[derive(Debug)]
pub(super) struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// The result of [`Images::extract_layer`]: the chain ID's lock, held until installed,
/// and the staged tree (none if the snapshot already existed).
pub(super) struct Extracted {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    staging: Option<Staging>,
}

impl Extracted {
    /// A layer locked by [`Images::lock_layer`] and, unless its snapshot existed, staged.
    pub(super) fn new(guard: tokio::sync::OwnedMutexGuard<()>, staging: Option<Staging>) -> Self {
        Self {
            _guard: guard,
            staging,
        }
    }
}

impl Images {
    /// Takes chain ID `layer.chain_id`'s lock (held until the layer is installed); true
    /// if the snapshot is already committed.
    pub(super) async fn lock_layer(
        &self,
        layer: &LayerRecord,
    ) -> (tokio::sync::OwnedMutexGuard<()>, bool) {
        let guard = self.inflight.lock(format!("snap/{}", layer.chain_id)).await;
        let committed = self
            .snapshotter
            .stat(&layer.chain_id)
            .is_ok_and(|info| info.kind == SnapshotKind::Committed);
        (guard, committed)
    }

    /// Starts unpacking layer `layer` from the stream `open` returns into a new staging
    /// directory on a blocking thread, checking its diff ID. `permit` is held until the
    /// thread is done (so a failed pull can wait for its unpackers to stop).
    pub(super) fn spawn_extract<R: Read>(
        &self,
        image: &str,
        layer: &LayerRecord,
        open: impl FnOnce() -> Result<R, Error> + Send + 'static,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> tokio::task::JoinHandle<Result<Staging, Error>> {
        let sn = self.snapshotter.clone();
        let (image, layer) = (image.to_string(), layer.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let dir = sn.staging_dir().map_err(|source| Error::Snapshot {
                image: image.clone(),
                source,
            })?;
            let staging = Staging(Some(dir.clone()));
            let applied = unpack::apply_to_dir(&dir, open()?).map_err(|source| Error::Unpack {
                image: image.clone(),
                layer: layer.digest.clone(),
                source,
            })?;
            if applied.diff_id.as_str() != layer.diff_id {
                return Err(Error::DiffIdMismatch {
                    image: image.clone(),
                    layer: layer.digest.clone(),
                    expected: layer.diff_id.clone(),
                    actual: applied.diff_id.to_string(),
                });
            }
            Ok(staging)
        })
    }

    /// Extracts layer `layer` (already in the content store) into a staging directory,
    /// unless its chain ID is already a committed snapshot; checks the diff ID.
    pub(super) async fn extract_layer(
        &self,
        image: &str,
        layer: &LayerRecord,
    ) -> Result<Extracted, Error> {
        let (guard, committed) = self.lock_layer(layer).await;
        if committed {
            return Ok(Extracted::new(guard, None));
        }
        let staging = self.extract_stored(image, layer, None).await?;
        Ok(Extracted::new(guard, Some(staging)))
    }

    /// Unpacks layer `layer` from its stored blob into a staging directory (the caller
    /// holds the chain ID's lock); see [`Self::spawn_extract`] for `permit`.
    pub(super) async fn extract_stored(
        &self,
        image: &str,
        layer: &LayerRecord,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Staging, Error> {
        let d = Digest::parse(&layer.digest).map_err(|e| Error::Malformed {
            image: image.to_string(),
            why: e.to_string(),
        })?;
        let content = self.content.clone();
        let (img, digest) = (image.to_string(), layer.digest.clone());
        let open = move || {
            let file = content.open(&d).map_err(|source| Error::Content {
                image: img,
                digest,
                source,
            })?;
            Ok(std::io::BufReader::with_capacity(1 << 20, file))
        };
        self.spawn_extract(image, layer, open, permit)
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Installs an extracted layer as snapshot `layer.chain_id` on `parent` (committed).
    pub(super) async fn install_layer(
        &self,
        image: &str,
        layer: &LayerRecord,
        parent: Option<&str>,
        mut extracted: Extracted,
    ) -> Result<(), Error> {
        let Some(mut staging) = extracted.staging.take() else {
            return Ok(());
        };
        let Some(dir) = staging.0.take() else {
            return Ok(());
        };
        let sn = self.snapshotter.clone();
        let (image, chain, parent) = (
            image.to_string(),
            layer.chain_id.clone(),
            parent.map(str::to_string),
        );
        tokio::task::spawn_blocking(move || {
            let mut restage = Staging(Some(dir.clone()));
            let snap_err = |source| Error::Snapshot {
                image: image.clone(),
                source,
            };
            let key = format!(
                "unpack-{}-{}",
                &chain[7..19],
                dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
            );
            let mounts = sn.prepare(&key, parent.as_deref()).map_err(snap_err)?;
            let result = (|| {
                let target = unpack::target_dir(&mounts).map_err(|source| Error::Unpack {
                    image: image.clone(),
                    layer: chain.clone(),
                    source,
                })?;
                // rename(2) replaces the empty directory prepare created.
                std::fs::rename(&dir, &target).map_err(|source| Error::Io {
                    op: "install layer",
                    path: target,
                    source,
                })?;
                sn.commit(&chain, &key).map_err(snap_err)
            })();
            if result.is_err() {
                if let Err(e) = sn.remove(&key) {
                    tracing::warn!(key, error = %e, "remove failed unpack snapshot");
                }
            } else {
                restage.0 = None; // installed: nothing to delete
            }
            result
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Extracts and installs one layer (sequential use, e.g. import).
    pub(super) async fn ensure_snapshot(
        &self,
        image: &str,
        layer: &LayerRecord,
        parent: Option<&str>,
    ) -> Result<(), Error> {
        let x = self.extract_layer(image, layer).await?;
        self.install_layer(image, layer, parent, x).await
    }

    /// Records `rec` under `names` (moving names that pointed elsewhere), counting its
    /// blobs and snapshots once if the image is new; frees what moved names orphaned.
    pub(super) fn record(&self, rec: ImageRecord, names: &[String]) -> Result<Image, Error> {
        let freed = self.meta.write(|tx| {
            if tx.get(Table::Images, &rec.id)?.is_none() {
                tx.put_json(Table::Images, &rec.id, &rec)?;
                for b in &rec.blobs {
                    tx.add_ref(&format!("blob/{b}"), 1)?;
                }
                for l in &rec.layers {
                    tx.add_ref(&format!("snap/{}", l.chain_id), 1)?;
                }
            }
            let mut freed = Freed::default();
            for name in names {
                let old = tx
                    .get(Table::Tags, name)?
                    .map(|v| String::from_utf8_lossy(&v).into_owned());
                tx.put(Table::Tags, name, rec.id.as_bytes())?;
                if let Some(old) = old.filter(|o| *o != rec.id) {
                    if super::names_of(tx, &old)?.is_empty() {
                        release(tx, &old, &mut freed)?;
                    }
                }
            }
            Ok::<_, Error>(freed)
        })?;
        self.delete_freed(freed);
        self.get(&rec.id)
    }

    /// Deletes released snapshots (top first) and blobs; failures are logged and left for
    /// the next start's garbage collection.
    pub(super) fn delete_freed(&self, freed: Freed) {
        for s in &freed.snapshots {
            if let Err(e) = self.snapshotter.remove(s) {
                tracing::warn!(snapshot = %s, error = %e, "snapshot not removed");
            }
        }
        for b in &freed.blobs {
            if let Ok(d) = Digest::parse(b) {
                if let Err(e) = self.content.delete(&d) {
                    tracing::warn!(blob = %b, error = %e, "blob not removed");
                }
            }
        }
    }
}

/// Deletes image `id`'s record and drops its references; what reaches zero goes to `freed`.
pub(super) fn release(tx: &mut WriteTx, id: &str, freed: &mut Freed) -> Result<(), Error> {
    let Some(rec) = tx.get_json::<ImageRecord>(Table::Images, id)? else {
        return Ok(());
    };
    tx.delete(Table::Images, id)?;
    for b in &rec.blobs {
        if tx.add_ref(&format!("blob/{b}"), -1)? == 0 && !freed.blobs.contains(b) {
            freed.blobs.push(b.clone());
        }
    }
    for l in rec.layers.iter().rev() {
        if tx.add_ref(&format!("snap/{}", l.chain_id), -1)? == 0
            && !freed.snapshots.contains(&l.chain_id)
        {
            freed.snapshots.push(l.chain_id.clone());
        }
    }
    Ok(())
}
