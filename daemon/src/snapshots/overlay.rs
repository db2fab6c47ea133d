//! The overlayfs snapshotter.
//!
//! On-disk format (version 1): `<root>/<id>/fs` is a snapshot's own layer (for image
//! layers: the unpacked tarball with whiteouts as 0:0 character devices and opaque
//! directories marked `trusted.overlay.opaque=y`, i.e. overlayfs' native format);
//! `<root>/<id>/work` is overlayfs' workdir of an active snapshot. Records live in the
//! metadata `snapshots` table; ids are short integers so that a deep `lowerdir=` list
//! stays under the mount option size limit.
//!
//! A directory is created before its record is committed and deleted after its record is
//! removed, so after a crash a directory may exist without a record, never the reverse;
//! [`OverlaySnapshotter::cleanup`] removes such leftovers. An active snapshot's record is
//! committed without fsync (see `prepare`): a crash before the caller's next durable
//! commit leaves the same kind of leftover.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Error, Info, Mount, SnapshotKind, Snapshotter, Usage};
use crate::metadata::{Metadata, Read as _, Table};

/// Overlay snapshots under a directory (normally `<root>/snapshots`).
#[derive(Debug)]
pub struct OverlaySnapshotter {
    root: PathBuf,
    meta: Arc<Metadata>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OverlaySnapshotter {
    /// Opens the snapshotter rooted at `root`, recording in `meta`.
    pub fn open(root: &Path, meta: Arc<Metadata>) -> Result<Self, Error> {
        crate::perms::dir(root, crate::perms::PRIVATE_DIR).map_err(|source| Error::Io {
            op: "create",
            path: root.into(),
            source,
        })?;
        Ok(Self {
            root: root.to_path_buf(),
            meta,
        })
    }

    /// Directory of snapshot `id`.
    fn dir(&self, id: u64) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// A new empty directory inside the snapshots root (same filesystem, so a tree built in
    /// it can be renamed into a snapshot). Removed by [`Self::cleanup`] if left behind.
    pub fn staging_dir(&self) -> Result<PathBuf, Error> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = self
            .root
            .join(format!("staging-{}-{n}", std::process::id()));
        fs::create_dir(&p).map_err(|source| Error::Io {
            op: "create",
            path: p.clone(),
            source,
        })?;
        Ok(p)
    }

    /// The `fs` directory of a snapshot.
    pub fn fs_dir(&self, key: &str) -> Result<PathBuf, Error> {
        Ok(self.dir(self.stat(key)?.id).join("fs"))
    }

    fn chain(&self, parent: Option<&str>) -> Result<Vec<PathBuf>, Error> {
        let tx = self.meta.read()?;
        let mut out = Vec::new();
        let mut cur = parent.map(str::to_string);
        while let Some(k) = cur {
            let info: Info = tx
                .get_json(Table::Snapshots, &k)?
                .ok_or_else(|| Error::NotFound(k.clone()))?;
            out.push(self.dir(info.id).join("fs"));
            cur = info.parent;
        }
        Ok(out)
    }

    /// The `fs` directories of committed snapshot `name` and its parents, top first.
    pub fn committed_dirs(&self, name: &str) -> Result<Vec<PathBuf>, Error> {
        let info = self.stat(name)?;
        if info.kind != SnapshotKind::Committed {
            return Err(Error::ParentNotCommitted(name.to_string()));
        }
        self.chain(Some(name))
    }

    fn mounts_for(&self, info: &Info) -> Result<Vec<Mount>, Error> {
        let dir = self.dir(info.id);
        let lowers = self.chain(info.parent.as_deref())?;
        if lowers.is_empty() {
            return Ok(vec![Mount {
                kind: "bind".into(),
                source: dir.join("fs").display().to_string(),
                options: vec!["rbind".into(), "rw".into()],
            }]);
        }
        let lower = lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        Ok(vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("workdir={}", dir.join("work").display()),
                format!("upperdir={}", dir.join("fs").display()),
                format!("lowerdir={lower}"),
            ],
        }])
    }

    /// Removes snapshot directories that have no record (crash leftovers). Returns how
    /// many were removed. Call only when no prepare is in flight (daemon start).
    pub fn cleanup(&self) -> Result<usize, Error> {
        let known: HashSet<String> = self.list()?.into_iter().map(|i| i.id.to_string()).collect();
        let mut n = 0;
        let rd = fs::read_dir(&self.root).map_err(|source| Error::Io {
            op: "list",
            path: self.root.clone(),
            source,
        })?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                let p = e.path();
                fs::remove_dir_all(&p).map_err(|source| Error::Io {
                    op: "remove",
                    path: p,
                    source,
                })?;
                n += 1;
            }
        }
        Ok(n)
    }
}

fn du(path: &Path, seen: &mut HashSet<(u64, u64)>, u: &mut Usage) {
    let Ok(md) = fs::symlink_metadata(path) else {
        return;
    };
    if seen.insert((md.dev(), md.ino())) {
        u.inodes += 1;
        u.bytes += md.blocks() * 512;
    }
    if md.is_dir() {
        if let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                du(&e.path(), seen, u);
            }
        }
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, Error> {
        // Without fsync (issue 20: one fsync less per CreateContainer). Nothing is
        // acknowledged on an active snapshot alone: CreateContainer answers after its
        // container record's durable commit and an unpack after `commit`'s, and either
        // makes this one durable too (redb persists commits in order). A crash before that
        // loses only the record, leaving a directory without one: `cleanup` removes it.
        let info = self.meta.write_volatile(|tx| {
            if tx.get(Table::Snapshots, key)?.is_some() {
                return Err(Error::AlreadyExists(key.to_string()));
            }
            if let Some(p) = parent {
                let pi: Info = tx
                    .get_json(Table::Snapshots, p)?
                    .ok_or_else(|| Error::NotFound(p.to_string()))?;
                if pi.kind != SnapshotKind::Committed {
                    return Err(Error::ParentNotCommitted(p.to_string()));
                }
            }
            let id = tx.next_snapshot_id()?;
            let info = Info {
                key: key.to_string(),
                id,
                kind: SnapshotKind::Active,
                parent: parent.map(str::to_string),
                created: now(),
            };
            let dir = self.dir(id);
            for sub in ["fs", "work"] {
                let p = dir.join(sub);
                fs::create_dir_all(&p).map_err(|source| Error::Io {
                    op: "create",
                    path: p,
                    source,
                })?;
            }
            tx.put_json(Table::Snapshots, key, &info)?;
            Ok(info)
        })?;
        self.mounts_for(&info)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, Error> {
        let info = self.stat(key)?;
        if info.kind != SnapshotKind::Active {
            return Err(Error::NotActive(key.to_string()));
        }
        self.mounts_for(&info)
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), Error> {
        let id = self.meta.write(|tx| {
            let mut info: Info = tx
                .get_json(Table::Snapshots, key)?
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            if info.kind != SnapshotKind::Active {
                return Err(Error::NotActive(key.to_string()));
            }
            if tx.get(Table::Snapshots, name)?.is_some() {
                return Err(Error::AlreadyExists(name.to_string()));
            }
            tx.delete(Table::Snapshots, key)?;
            info.key = name.to_string();
            info.kind = SnapshotKind::Committed;
            tx.put_json(Table::Snapshots, name, &info)?;
            Ok(info.id)
        })?;
        // The workdir is only for mounting active snapshots.
        let _ = fs::remove_dir_all(self.dir(id).join("work"));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), Error> {
        let id = self.meta.write(|tx| {
            let info: Info = tx
                .get_json(Table::Snapshots, key)?
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            let all: Vec<(String, Info)> = tx.list_json(Table::Snapshots)?;
            let children = all
                .iter()
                .filter(|(_, i)| i.parent.as_deref() == Some(key))
                .count();
            if children > 0 {
                return Err(Error::HasChildren {
                    key: key.to_string(),
                    children,
                });
            }
            tx.delete(Table::Snapshots, key)?;
            Ok(info.id)
        })?;
        let dir = self.dir(id);
        fs::remove_dir_all(&dir).map_err(|source| Error::Io {
            op: "remove",
            path: dir,
            source,
        })
    }

    fn stat(&self, key: &str) -> Result<Info, Error> {
        self.meta
            .read()?
            .get_json(Table::Snapshots, key)?
            .ok_or_else(|| Error::NotFound(key.to_string()))
    }

    fn list(&self) -> Result<Vec<Info>, Error> {
        Ok(self
            .meta
            .read()?
            .list_json(Table::Snapshots)?
            .into_iter()
            .map(|(_, i)| i)
            .collect())
    }

    fn usage(&self, key: &str) -> Result<Usage, Error> {
        let mut u = Usage::default();
        du(&self.fs_dir(key)?, &mut HashSet::new(), &mut u);
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshots::conformance;

    #[test]
    fn overlay_conformance_and_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(Metadata::open(&dir.path().join("meta.redb")).unwrap());
        let s = OverlaySnapshotter::open(&dir.path().join("snapshots"), meta).unwrap();
        conformance::run(&s);
        fs::create_dir_all(dir.path().join("snapshots/999/fs")).unwrap();
        s.prepare("keep", None).unwrap();
        assert_eq!(s.cleanup().unwrap(), 1);
        assert!(s.fs_dir("keep").unwrap().is_dir());
    }

    #[test]
    fn overlay_mounts_stack_parents() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(Metadata::open(&dir.path().join("meta.redb")).unwrap());
        let s = OverlaySnapshotter::open(&dir.path().join("snapshots"), meta).unwrap();
        s.prepare("l1-a", None).unwrap();
        s.commit("l1", "l1-a").unwrap();
        s.prepare("l2-a", Some("l1")).unwrap();
        s.commit("l2", "l2-a").unwrap();
        let m = s.prepare("ctr", Some("l2")).unwrap();
        assert_eq!(m[0].kind, "overlay");
        let lower = m[0].option("lowerdir").unwrap();
        let l2 = s.fs_dir("l2").unwrap().display().to_string();
        let l1 = s.fs_dir("l1").unwrap().display().to_string();
        assert_eq!(lower, format!("{l2}:{l1}"));
        assert!(m[0].option("upperdir").unwrap().ends_with("/fs"));
    }
}
