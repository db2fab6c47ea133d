//! The filesystem content store.
//!
//! On-disk format (version 1): `<root>/blobs/sha256/<hex>` holds committed blobs, read-only
//! (mode 0444); `<root>/ingest/<n>` holds writes in progress. A commit hashes while writing,
//! checks digest and size, fsyncs, then renames into `blobs/` — so a crash leaves either no
//! blob or a complete one, plus ingest leftovers that [`Manager::clean_ingest`] removes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::{Error, Info, Ingester, Manager, Provider, Writer};
use crate::digest::Digest;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Content store rooted at a directory (normally `<root>/content`).
#[derive(Debug)]
pub struct LocalStore {
    blobs: PathBuf,
    ingest: PathBuf,
    seq: AtomicU64,
}

impl LocalStore {
    /// Opens (creating) a store at `root`.
    pub fn open(root: &Path) -> Result<Self, Error> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        crate::perms::dir(root, crate::perms::PRIVATE_DIR).map_err(io_err("create", root))?;
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        fs::create_dir_all(&ingest).map_err(io_err("create", &ingest))?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Ok(Self {
            blobs,
            ingest,
            seq: AtomicU64::new(seed),
        })
    }

    /// Path of a committed blob (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }
}

impl Provider for LocalStore {
    fn info(&self, digest: &Digest) -> Result<Info, Error> {
        let p = self.blob_path(digest);
        match fs::metadata(&p) {
            Ok(m) => Ok(Info {
                digest: digest.clone(),
                size: m.len(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(digest.clone())),
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    fn open(&self, digest: &Digest) -> Result<File, Error> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(digest.clone()),
            _ => io_err("open", &p)(e),
        })
    }

    fn read_all(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.open(digest)?
            .read_to_end(&mut out)
            .map_err(io_err("read", &self.blob_path(digest)))?;
        Ok(out)
    }
}

/// A write in progress into `ingest/`.
#[derive(Debug)]
pub struct LocalWriter {
    file: File,
    path: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    written: u64,
    committed: bool,
}

impl Ingester for LocalStore {
    type Writer = LocalWriter;

    fn writer(&self) -> Result<LocalWriter, Error> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let path = self.ingest.join(format!("{}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok(LocalWriter {
            file,
            path,
            blobs: self.blobs.clone(),
            hasher: Sha256::new(),
            written: 0,
            committed: false,
        })
    }
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Writer for LocalWriter {
    fn written(&self) -> u64 {
        self.written
    }

    fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    fn commit(mut self, expected: &Digest, size: Option<u64>) -> Result<Info, Error> {
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(s) = size {
            if s != self.written {
                return Err(Error::SizeMismatch {
                    digest: expected.clone(),
                    expected: s,
                    actual: self.written,
                });
            }
        }
        if &actual != expected {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.file.sync_all().map_err(io_err("sync", &self.path))?;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o444))
            .map_err(io_err("chmod", &self.path))?;
        let target = self.blobs.join(expected.hex());
        fs::rename(&self.path, &target).map_err(io_err("rename", &target))?;
        self.committed = true;
        Ok(Info {
            digest: actual,
            size: self.written,
        })
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Manager for LocalStore {
    fn list(&self) -> Result<Vec<Info>, Error> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))? {
            let e = e.map_err(io_err("list", &self.blobs))?;
            let name = e.file_name();
            let Some(d) = name
                .to_str()
                .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
            else {
                continue;
            };
            let size = e.metadata().map_err(io_err("stat", &e.path()))?.len();
            out.push(Info { digest: d, size });
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    fn delete(&self, digest: &Digest) -> Result<(), Error> {
        let p = self.blob_path(digest);
        fs::remove_file(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(digest.clone()),
            _ => io_err("delete", &p)(e),
        })
    }

    fn clean_ingest(&self) -> Result<usize, Error> {
        let mut n = 0;
        for e in fs::read_dir(&self.ingest).map_err(io_err("list", &self.ingest))? {
            let e = e.map_err(io_err("list", &self.ingest))?;
            fs::remove_file(e.path()).map_err(io_err("delete", &e.path()))?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_store_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        super::super::conformance::run(&store);
    }
}
