//! Image volumes (CRI `Mount.image`): an image's unpacked layers, mounted read-only into a
//! container, and the holds that keep such an image from being removed while a container
//! mounts it.
//!
//! Holds live in memory only: the runtime's container records list the image ids their
//! volumes use (`ContainerRecord::image_volumes`), and the runtime takes the holds again
//! from them when crustd starts (before the CRI socket serves), so a restart loses none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{Error, Image, Images};

/// Image id → the containers whose image volumes mount it.
#[derive(Debug, Default)]
pub struct VolumeHolds(std::sync::Mutex<BTreeMap<String, BTreeSet<String>>>);

impl VolumeHolds {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The containers holding image `id` (empty if none).
    pub fn holders(&self, id: &str) -> Vec<String> {
        self.map()
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Images {
    /// Holds image `spec` (name, id or id prefix) for container `container`'s image volume
    /// and returns it with the directories of its layers, top first (the lower
    /// directories of a read-only overlay of the image). The directories are the committed
    /// snapshots themselves: nothing is copied, and the mount must be read-only.
    ///
    /// Resolving and holding happen under the shared side of the GC lock, which removals
    /// take exclusively: a RemoveImage either finished before (the image is not found) or
    /// sees the hold.
    pub async fn hold_volume(
        &self,
        spec: &str,
        container: &str,
    ) -> Result<(Image, Vec<PathBuf>), Error> {
        let _gc = self.gc.read().await;
        let (img, dirs) = self.volume_layers(spec)?;
        self.volume_holds
            .map()
            .entry(img.id().to_string())
            .or_default()
            .insert(container.to_string());
        Ok((img, dirs))
    }

    fn volume_layers(&self, spec: &str) -> Result<(Image, Vec<PathBuf>), Error> {
        let img = self.get(spec)?;
        let dirs = match img.top_chain_id() {
            Some(top) => {
                self.snapshotter
                    .committed_dirs(top)
                    .map_err(|source| Error::Snapshot {
                        image: spec.into(),
                        source,
                    })?
            }
            None => Vec::new(),
        };
        Ok((img, dirs))
    }

    /// Records that container `container` mounts image `id` as a volume: until
    /// [`Images::release_volumes`], removing the image fails (FailedPrecondition). For
    /// recovery at start; creates use [`Images::hold_volume`].
    pub fn rehold_volume(&self, id: &str, container: &str) {
        self.volume_holds
            .map()
            .entry(id.to_string())
            .or_default()
            .insert(container.to_string());
    }

    /// Drops every hold of container `container`.
    pub fn release_volumes(&self, container: &str) {
        let mut m = self.volume_holds.map();
        for set in m.values_mut() {
            set.remove(container);
        }
        m.retain(|_, s| !s.is_empty());
    }

    /// The containers whose image volumes mount image `id`.
    pub fn volume_holders(&self, id: &str) -> Vec<String> {
        self.volume_holds.holders(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_are_per_container() {
        let h = VolumeHolds::default();
        h.map().entry("img".into()).or_default().insert("c1".into());
        h.map().entry("img".into()).or_default().insert("c2".into());
        assert_eq!(h.holders("img"), ["c1", "c2"]);
        assert!(h.holders("other").is_empty());
    }
}
