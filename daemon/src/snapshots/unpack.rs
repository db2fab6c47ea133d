//! Safe application of a layer tarball to a snapshot directory.
//!
//! The `tar` crate only *reads* entries here; every filesystem change is made by us relative
//! to a directory fd inside the snapshot, never by path from `/`:
//! - entry names are normalised; absolute names (but `/`, the root, which is skipped) and
//!   any `..` component are rejected; an archive may end without its end-of-archive blocks;
//! - a parent directory is resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_XDEV)` from the snapshot root, so an entry under a symlinked parent, a
//!   symlink chain or a mount point fails instead of being followed;
//! - the final component is created with `O_CREAT|O_EXCL|O_NOFOLLOW` / `mknodat` /
//!   `symlinkat` / `linkat` without following, after removing what was there;
//! - hardlink targets are resolved the same way and must exist inside the snapshot.
//!
//! Whiteouts are converted to overlayfs' format: `.wh.NAME` becomes a 0:0 character device
//! `NAME` (one plain component: a whiteout of nothing, `.` or `..` is refused, and nothing
//! is ever removed but an entry of a directory resolved beneath the snapshot); `.wh..wh..opq`
//! marks its directory `trusted.overlay.opaque=y`. Ownership, mode (incl. setuid), mtimes,
//! xattrs (`SCHILY.xattr.*`), device nodes and fifos are kept; a regular file is chowned
//! only when creation did not already give it the right owner: the owner is read back with
//! fstat (a setgid parent or a `grpid` mount decide the group, and a cheap fstat saves a
//! chown, which dirties the inode, in the common case).
//! The uncompressed stream is hashed while read: the result is the layer's diff ID.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mknodat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use sha2::{Digest as _, Sha256};

use super::Mount;
use crate::digest::Digest;
use crate::error::{ErrorKind, Kind};

/// Layer application failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mounts do not name a directory to apply to.
    #[error("cannot apply a layer to mounts {0:?}")]
    Mounts(Vec<Mount>),
    /// Reading (decompressing) the tar stream failed.
    #[error("read layer tar stream")]
    Read(#[source] io::Error),
    /// An entry name is absolute or climbs with `..`.
    #[error("layer entry {0:?} escapes the snapshot")]
    Escape(PathBuf),
    /// A whiteout (`.wh.NAME`) names nothing, `.` or `..`.
    #[error("layer entry {0:?} is a whiteout of an invalid name")]
    Whiteout(PathBuf),
    /// An entry's parent path crosses a symlink or a non-directory.
    #[error("layer entry {0:?} lies under a symlink or non-directory")]
    UnsafeParent(PathBuf),
    /// A hardlink points to something that is not inside this layer.
    #[error("layer entry {path:?} is a hardlink to {target:?}, which is not in the snapshot")]
    HardlinkTarget {
        /// The link.
        path: PathBuf,
        /// Its target.
        target: PathBuf,
    },
    /// A filesystem call failed.
    #[error("{op} {path:?}")]
    Fs {
        /// What was done.
        op: &'static str,
        /// The entry.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Fs { .. } | Error::Mounts(_) => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// Result of applying a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Uncompressed size.
    pub size: u64,
}

/// The directory a layer must be written into, for mounts returned by `prepare`.
pub fn target_dir(mounts: &[Mount]) -> Result<PathBuf, Error> {
    match mounts {
        [m] if m.kind == "bind" => Ok(PathBuf::from(&m.source)),
        [m] if m.kind == "overlay" => m
            .option("upperdir")
            .map(PathBuf::from)
            .ok_or_else(|| Error::Mounts(mounts.to_vec())),
        _ => Err(Error::Mounts(mounts.to_vec())),
    }
}

/// Applies a (possibly gzip/zstd compressed) layer tarball to the snapshot `mounts`.
pub fn apply_layer<R: Read>(mounts: &[Mount], reader: R) -> Result<Applied, Error> {
    apply_to_dir(&target_dir(mounts)?, reader)
}

struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    n: u64,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Wraps `reader` in the decompressor its magic bytes call for (gzip, zstd or none).
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, reader);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(br)?))
    } else {
        Ok(Box::new(br))
    }
}

/// Normalises an entry name to its components; rejects absolute names and `..`, but for
/// the root itself (`/`, as umoci writes it; `/.`), which has none.
fn components(raw: &Path) -> Result<Vec<&OsStr>, Error> {
    let bytes = raw.as_os_str().as_bytes();
    if bytes.starts_with(b"/") {
        if bytes
            .split(|b| *b == b'/')
            .all(|c| c.is_empty() || c == b".")
        {
            return Ok(Vec::new());
        }
        return Err(Error::Escape(raw.to_path_buf()));
    }
    let mut out = Vec::new();
    for c in bytes.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(Error::Escape(raw.to_path_buf())),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

fn fs_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> Error + 'a {
    move |e| Error::Fs {
        op,
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

const RESOLVE: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
    .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
    .union(ResolveFlag::RESOLVE_NO_XDEV);

fn open_dir_beneath<Fd: AsFd>(dir: Fd, rel: &OsStr) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(RESOLVE);
    openat2(dir, rel, how)
}

struct Applier {
    root: OwnedFd,
    /// Last resolved parent, reused for consecutive entries of one directory.
    cached: Option<(Vec<u8>, OwnedFd)>,
    /// Directories whose mtime is set at the end (creating children changes it).
    dir_times: Vec<(Vec<u8>, u64)>,
}

impl Applier {
    /// Resolves (creating as 0755 directories) the parent components of an entry.
    fn parent(&mut self, comps: &[&OsStr], entry: &Path) -> Result<&OwnedFd, Error> {
        let key = comps
            .iter()
            .map(|c| c.as_bytes())
            .collect::<Vec<_>>()
            .join(&b'/');
        if self
            .cached
            .as_ref()
            .map(|(k, ..)| k != &key)
            .unwrap_or(true)
        {
            let fd = if key.is_empty() {
                self.root.try_clone().map_err(|source| Error::Fs {
                    op: "dup",
                    path: entry.into(),
                    source,
                })?
            } else {
                match open_dir_beneath(&self.root, OsStr::from_bytes(&key)) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => self.mkdir_p(comps, entry)?,
                    Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV | Errno::EAGAIN) => {
                        return Err(Error::UnsafeParent(entry.into()))
                    }
                    Err(e) => return Err(fs_err("open parent of", entry)(e)),
                }
            };
            self.cached = Some((key, fd));
        }
        match &self.cached {
            Some((_, fd)) => Ok(fd),
            None => Err(Error::UnsafeParent(entry.into())),
        }
    }

    fn mkdir_p(&self, comps: &[&OsStr], entry: &Path) -> Result<OwnedFd, Error> {
        let mut cur = self.root.try_clone().map_err(|source| Error::Fs {
            op: "dup",
            path: entry.into(),
            source,
        })?;
        for c in comps {
            cur = match open_dir_beneath(&cur, c) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match nix::sys::stat::mkdirat(&cur, *c, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(fs_err("mkdir parent of", entry)(e)),
                    }
                    open_dir_beneath(&cur, c).map_err(|_| Error::UnsafeParent(entry.into()))?
                }
                Err(_) => return Err(Error::UnsafeParent(entry.into())),
            };
        }
        Ok(cur)
    }
}

/// Whether `name` is one plain path component: not empty, not `.` or `..`, no `/`.
fn is_plain_name(name: &[u8]) -> bool {
    !matches!(name, b"" | b"." | b"..") && !name.contains(&b'/')
}

/// Removes whatever is at `name` in `dir` (a non-empty directory recursively).
///
/// `name` must be one plain component (checked here too, whatever the caller did), so only
/// an entry of `dir`, which was resolved beneath the snapshot, can ever be removed.
fn remove_existing(
    dir: &OwnedFd,
    name: &OsStr,
    entry: &Path,
    keep_dir: bool,
) -> Result<bool, Error> {
    if !is_plain_name(name.as_bytes()) {
        return Err(Error::Escape(entry.into()));
    }
    let st = match nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(fs_err("stat", entry)(e)),
    };
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir && keep_dir {
        return Ok(true);
    }
    if is_dir {
        // /proc/self/fd/N/name: the parent fd was resolved beneath the root, and std's
        // remove_dir_all does not follow symlinks inside the tree.
        let p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
        std::fs::remove_dir_all(&p).map_err(|source| Error::Fs {
            op: "remove",
            path: entry.into(),
            source,
        })?;
    } else {
        nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(fs_err("remove", entry))?;
    }
    Ok(false)
}

fn set_xattrs(fd: &impl AsRawFd, xattrs: &[(CString, Vec<u8>)], entry: &Path) -> Result<(), Error> {
    for (k, v) in xattrs {
        // SAFETY: fd is open, k is NUL-terminated and v outlives the call.
        let r =
            unsafe { libc::fsetxattr(fd.as_raw_fd(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOTSUP) {
                tracing::debug!(entry = %entry.display(), xattr = ?k, "xattr not supported, skipped");
                continue;
            }
            return Err(Error::Fs {
                op: "set xattr on",
                path: entry.into(),
                source: e,
            });
        }
    }
    Ok(())
}

struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: u64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

fn ts(secs: u64) -> TimeSpec {
    TimeSpec::new(secs as libc::time_t, 0)
}

/// Applies a layer tarball (compressed or not) to directory `dir`.
pub fn apply_to_dir<R: Read>(dir: &Path, reader: R) -> Result<Applied, Error> {
    let root = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(fs_err("open snapshot", dir))?;
    let mut hr = HashReader {
        inner: decompress(reader).map_err(Error::Read)?,
        hasher: Sha256::new(),
        n: 0,
    };
    let mut ap = Applier {
        root,
        cached: None,
        dir_times: Vec::new(),
    };
    {
        let mut ar = tar::Archive::new(&mut hr);
        let mut buf = vec![0u8; 1 << 20];
        for entry in ar.entries().map_err(Error::Read)? {
            let entry = entry.map_err(Error::Read)?;
            apply_entry(&mut ap, entry, &mut buf)?;
        }
    }
    // Hash trailing padding too: the diff ID covers the whole stream.
    io::copy(&mut hr, &mut io::sink()).map_err(Error::Read)?;
    // Directory mtimes last, deepest first.
    ap.dir_times.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
    ap.cached = None;
    for (path, mtime) in std::mem::take(&mut ap.dir_times) {
        let p = PathBuf::from(OsStr::from_bytes(&path));
        let comps = components(&p)?;
        let Some((name, parents)) = comps.split_last() else {
            continue;
        };
        let parent = ap.parent(parents, &p)?;
        nix::sys::stat::utimensat(
            parent,
            *name,
            &ts(mtime),
            &ts(mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(fs_err("set times of", &p))?;
    }
    Ok(Applied {
        diff_id: Digest::from_hasher(hr.hasher),
        size: hr.n,
    })
}

fn apply_entry<R: Read>(
    ap: &mut Applier,
    mut entry: tar::Entry<'_, R>,
    buf: &mut [u8],
) -> Result<(), Error> {
    let path = entry.path().map_err(Error::Read)?.into_owned();
    let comps = components(&path)?;
    let Some((name, parents)) = comps.split_last() else {
        return Ok(()); // the root itself
    };
    let name: &OsStr = name;
    let h = entry.header();
    let kind = h.entry_type();
    let mut meta = Meta {
        uid: h.uid().map_err(Error::Read)?,
        gid: h.gid().map_err(Error::Read)?,
        mode: h.mode().map_err(Error::Read)? & 0o7777,
        mtime: h.mtime().map_err(Error::Read)?,
        xattrs: Vec::new(),
    };
    let link = entry
        .link_name()
        .map_err(Error::Read)?
        .map(|l| l.into_owned());
    if let Some(pax) = entry.pax_extensions().map_err(Error::Read)? {
        for ext in pax {
            let ext = ext.map_err(Error::Read)?;
            let (Ok(k), v) = (ext.key(), ext.value_bytes()) else {
                continue;
            };
            let num = || {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.split('.').next()?.parse::<u64>().ok())
            };
            match k {
                "uid" => meta.uid = num().unwrap_or(meta.uid),
                "gid" => meta.gid = num().unwrap_or(meta.gid),
                "mtime" => meta.mtime = num().unwrap_or(meta.mtime),
                _ => {
                    if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                        if let Ok(c) = CString::new(x) {
                            meta.xattrs.push((c, v.to_vec()));
                        }
                    }
                }
            }
        }
    }

    // Whiteouts.
    let nb = name.as_bytes();
    if let Some(hidden) = nb.strip_prefix(b".wh.") {
        let parent = ap.parent(parents, &path)?;
        if hidden == b".wh..opq" {
            let fd = open_dir_beneath(parent, OsStr::new(".")).map_err(fs_err("open", &path))?;
            let rfd = reopen_rdonly(&fd, &path)?;
            set_xattrs(
                &rfd,
                &[(c"trusted.overlay.opaque".to_owned(), b"y".to_vec())],
                &path,
            )?;
        } else if !is_plain_name(hidden) {
            return Err(Error::Whiteout(path));
        } else if !hidden.starts_with(b".wh.") {
            let target = OsStr::from_bytes(hidden);
            remove_existing(parent, target, &path, false)?;
            mknodat(
                parent,
                target,
                SFlag::S_IFCHR,
                Mode::empty(),
                nix::sys::stat::makedev(0, 0),
            )
            .map_err(fs_err("create whiteout for", &path))?;
        }
        return Ok(());
    }

    let parent = ap.parent(parents, &path)?;
    let own = |p: &OwnedFd, n: &OsStr, flags| {
        nix::unistd::fchownat(
            p,
            n,
            Some(Uid::from_raw(meta.uid as u32)),
            Some(Gid::from_raw(meta.gid as u32)),
            flags,
        )
    };
    use tar::EntryType as T;
    match kind {
        T::Directory => {
            if !remove_existing(parent, name, &path, true)? {
                nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o700))
                    .map_err(fs_err("mkdir", &path))?;
            }
            let fd =
                open_dir_beneath(parent, name).map_err(|_| Error::UnsafeParent(path.clone()))?;
            let rfd = reopen_rdonly(&fd, &path)?;
            nix::unistd::fchown(
                &rfd,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
            )
            .map_err(fs_err("chown", &path))?;
            nix::sys::stat::fchmod(&rfd, Mode::from_bits_truncate(meta.mode))
                .map_err(fs_err("chmod", &path))?;
            set_xattrs(&rfd, &meta.xattrs, &path)?;
            let key = comps
                .iter()
                .map(|c| c.as_bytes())
                .collect::<Vec<_>>()
                .join(&b'/');
            ap.dir_times.push((key, meta.mtime));
        }
        T::Regular | T::Continuous | T::GNUSparse => {
            let create = || {
                nix::fcntl::openat(
                    parent,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(meta.mode & 0o777),
                )
            };
            // Usually nothing is there: try first, clear the way only on EEXIST.
            let fd = match create() {
                Err(Errno::EEXIST) => {
                    remove_existing(parent, name, &path, false)?;
                    create()
                }
                r => r,
            }
            .map_err(fs_err("create", &path))?;
            // The owner creation gave it: ours, but the group may be the parent's (setgid
            // parent, `grpid` mount), so it is read back rather than predicted.
            let created = nix::sys::stat::fstat(&fd).map_err(fs_err("stat", &path))?;
            let mut f = File::from(fd);
            // A block of zeros becomes a hole: a GNU sparse entry of a few bytes in the layer
            // can declare a file of terabytes, whose zeros the tar reader hands out as data;
            // written out, they filled the disk. (Plain files' runs of zeros gain too.)
            let (mut len, mut holes) = (0u64, false);
            loop {
                let n = entry.read(buf).map_err(Error::Read)?;
                if n == 0 {
                    break;
                }
                let w = if buf[..n].iter().all(|b| *b == 0) {
                    holes = true;
                    f.seek(io::SeekFrom::Current(n as i64)).map(|_| ())
                } else {
                    f.write_all(&buf[..n])
                };
                w.map_err(|source| Error::Fs {
                    op: "write",
                    path: path.clone(),
                    source,
                })?;
                len += n as u64;
            }
            if holes {
                // A trailing hole exists only once the length is set.
                f.set_len(len).map_err(|source| Error::Fs {
                    op: "write",
                    path: path.clone(),
                    source,
                })?;
            }
            if (meta.uid, meta.gid) != (created.st_uid.into(), created.st_gid.into()) {
                nix::unistd::fchown(
                    &f,
                    Some(Uid::from_raw(meta.uid as u32)),
                    Some(Gid::from_raw(meta.gid as u32)),
                )
                .map_err(fs_err("chown", &path))?;
            }
            // chown clears setuid/setgid, and the umask may have masked bits at create.
            if meta.mode & 0o7000 != 0 || meta.mode & umask() != 0 {
                nix::sys::stat::fchmod(&f, Mode::from_bits_truncate(meta.mode))
                    .map_err(fs_err("chmod", &path))?;
            }
            set_xattrs(&f, &meta.xattrs, &path)?;
            nix::sys::stat::futimens(&f, &ts(meta.mtime), &ts(meta.mtime))
                .map_err(fs_err("set times of", &path))?;
        }
        T::Symlink => {
            let target = link.ok_or_else(|| {
                Error::Read(io::Error::other(format!("symlink {path:?} without target")))
            })?;
            remove_existing(parent, name, &path, false)?;
            nix::unistd::symlinkat(&target, parent, name).map_err(fs_err("symlink", &path))?;
            own(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(fs_err("chown", &path))?;
            nix::sys::stat::utimensat(
                parent,
                name,
                &ts(meta.mtime),
                &ts(meta.mtime),
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(fs_err("set times of", &path))?;
        }
        T::Link => {
            let target = link.ok_or_else(|| {
                Error::Read(io::Error::other(format!(
                    "hardlink {path:?} without target"
                )))
            })?;
            let tcomps = components(&target).map_err(|_| Error::HardlinkTarget {
                path: path.clone(),
                target: target.clone(),
            })?;
            let bad = || Error::HardlinkTarget {
                path: path.clone(),
                target: target.clone(),
            };
            let (tname, tparents) = tcomps.split_last().ok_or_else(bad)?;
            let tkey = tparents
                .iter()
                .map(|c| c.as_bytes())
                .collect::<Vec<_>>()
                .join(&b'/');
            let tdir = if tkey.is_empty() {
                ap.root.try_clone().map_err(|source| Error::Fs {
                    op: "dup",
                    path: path.clone(),
                    source,
                })?
            } else {
                open_dir_beneath(&ap.root, OsStr::from_bytes(&tkey)).map_err(|_| bad())?
            };
            let parent = ap.parent(parents, &path)?;
            if tkey
                == parents
                    .iter()
                    .map(|c| c.as_bytes())
                    .collect::<Vec<_>>()
                    .join(&b'/')
                && *tname == name
            {
                return Ok(()); // a link to itself: nothing to do
            }
            remove_existing(parent, name, &path, false)?;
            nix::unistd::linkat(&tdir, *tname, parent, name, nix::fcntl::AtFlags::empty())
                .map_err(|e| match e {
                    Errno::ENOENT | Errno::EXDEV | Errno::EPERM => bad(),
                    e => fs_err("link", &path)(e),
                })?;
        }
        T::Char | T::Block | T::Fifo => {
            let sflag = match kind {
                T::Char => SFlag::S_IFCHR,
                T::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let major = entry.header().device_major().ok().flatten().unwrap_or(0);
            let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
            remove_existing(parent, name, &path, false)?;
            mknodat(
                parent,
                name,
                sflag,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::makedev(major.into(), minor.into()),
            )
            .map_err(fs_err("mknod", &path))?;
            own(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(fs_err("chown", &path))?;
            // mknod applies the umask; set the exact mode through a path fd of the node.
            let p = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd())).join(name);
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(meta.mode))
                .map_err(|source| Error::Fs {
                op: "chmod",
                path: path.clone(),
                source,
            })?;
            nix::sys::stat::utimensat(
                parent,
                name,
                &ts(meta.mtime),
                &ts(meta.mtime),
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(fs_err("set times of", &path))?;
        }
        other => {
            tracing::debug!(entry = %path.display(), kind = ?other, "tar entry type skipped");
        }
    }
    Ok(())
}

/// The process umask, read once from /proc (the umask(2) call can only read by writing);
/// unknown means "assume everything is masked", so modes are always set explicitly.
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o777)
    })
}

/// An O_RDONLY fd for a directory O_PATH fd (fchown/fchmod/fsetxattr need a real fd).
fn reopen_rdonly(fd: &OwnedFd, path: &Path) -> Result<OwnedFd, Error> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(RESOLVE);
    openat2(fd, ".", how).map_err(fs_err("open", path))
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
