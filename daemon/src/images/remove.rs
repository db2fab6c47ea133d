//! RemoveImage semantics: removing a tag removes that name only, unless it was the image's
//! last tag; removing by id or digest reference removes the image and all its names.
//! What no other image references is then deleted from disk. An image that a container
//! mounts as an image volume is not removed (FailedPrecondition), not even by its last tag.

use super::{commit, names_of, reference, resolve, Error, Images};

impl Images {
    /// Removes `spec` (name, id or id prefix); [`Error::NotFound`] if unknown.
    pub async fn remove(&self, spec: &str) -> Result<(), Error> {
        let _gc = self.gc.write().await;
        let freed = self.meta.write(|tx| {
            let (id, matched) = resolve(tx, spec)?;
            let mut freed = commit::Freed::default();
            if let Some(name) = matched.filter(|n| !reference::is_digest_name(n)) {
                tx.delete(crate::metadata::Table::Tags, &name)?;
                let left = names_of(tx, &id)?;
                if left.iter().any(|n| !reference::is_digest_name(n)) {
                    return Ok::<_, Error>(freed);
                }
            }
            let holders = self.volume_holders(&id);
            if !holders.is_empty() {
                return Err(Error::InUse {
                    image: id,
                    containers: holders.join(","),
                });
            }
            for n in names_of(tx, &id)? {
                tx.delete(crate::metadata::Table::Tags, &n)?;
            }
            commit::release(tx, &id, &mut freed)?;
            Ok(freed)
        })?;
        self.delete_freed(freed);
        Ok(())
    }
}
