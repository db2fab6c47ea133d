//! Reading a file of a snapshot without mounting it, for the few files crustd itself
//! needs from an image (`/etc/passwd`, `/etc/group`).
//!
//! The snapshot's layer directories (top first) are merged as overlayfs merges them: a
//! name is taken from the topmost layer that has it; a 0:0 character device is a whiteout
//! (the name is absent); a directory is merged with the same directory of lower layers
//! down to one marked `trusted.overlay.opaque=y`, and any non-directory hides what is
//! below it. A path is resolved in that view one name at a time: each name is looked up
//! with `fstatat(AT_SYMLINK_NOFOLLOW)` and opened with `O_NOFOLLOW` under an already open
//! directory of a layer, symlinks are followed by hand (at most [`MAX_SYMLINKS`]), and an
//! absolute target or a `..` at the top restarts at the view's `/` — the walk never leaves
//! the layer directories, whatever the image's symlinks say (as `RESOLVE_IN_ROOT`).
//! Only a regular file is opened for reading (never a FIFO or a device, opening which may
//! block or have effects), with `O_NONBLOCK`, and at most a given number of bytes is read.
//!
//! Why by hand rather than `openat2(RESOLVE_IN_ROOT)`: that confines a walk to one tree,
//! but an image is a stack of trees — `/etc` may come from one layer and a symlink
//! `/etc/passwd -> ../usr/share/passwd` point into another — and mounting the overlay to
//! read two small files would cost a mount (and a private mount namespace) per container.
//!
//! Everything here blocks: call it from a blocking thread.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, SFlag};

/// Symlinks followed in one lookup before giving up (Linux' own limit).
pub const MAX_SYMLINKS: usize = 40;

/// Why a file could not be read from a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A layer directory could not be opened.
    #[error("open layer {path}")]
    OpenLayer {
        /// The layer directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The path names something other than a regular file.
    #[error("{path} in the image is a {kind}, not a regular file")]
    NotRegular {
        /// Path inside the snapshot.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// The file is larger than the caller allows.
    #[error("{path} in the image is larger than {cap} bytes")]
    TooLarge {
        /// Path inside the snapshot.
        path: String,
        /// The limit.
        cap: u64,
    },
    /// More than [`MAX_SYMLINKS`] symlinks on the way.
    #[error("{path} in the image: too many levels of symbolic links")]
    SymlinkLoop {
        /// Path inside the snapshot.
        path: String,
    },
    /// A lookup, open or read failed.
    #[error("read {path} in the image")]
    Read {
        /// Path inside the snapshot.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::Kind for ViewError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            ViewError::NotRegular { .. }
            | ViewError::TooLarge { .. }
            | ViewError::SymlinkLoop { .. } => ErrorKind::InvalidArgument,
            ViewError::OpenLayer { .. } | ViewError::Read { .. } => ErrorKind::Internal,
        }
    }
}

/// The merged, read-only view of a snapshot's layer directories.
#[derive(Debug)]
pub struct LayerView {
    /// Open root directories of the layers, top first.
    roots: Vec<OwnedFd>,
}

/// What one name of a merged directory is.
enum Entry {
    /// Absent (never there, or whited out).
    Missing,
    /// A directory: its open directory in each layer that contributes, top first.
    Dir(Vec<OwnedFd>),
    /// A symlink with this target.
    Symlink(OsString),
    /// Anything else, found in layer directory `index` of the current level.
    Other { index: usize, stat: FileStat },
}

fn kind_of(stat: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFSOCK => "socket",
        SFlag::S_IFLNK => "symlink",
        SFlag::S_IFREG => "regular file",
        _ => "special file",
    }
}

fn is_type(stat: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == t
}

impl LayerView {
    /// Opens the layer directories `layers` (top first).
    pub fn open(layers: &[PathBuf]) -> Result<Self, ViewError> {
        let roots = layers
            .iter()
            .map(|l| {
                openat(
                    nix::fcntl::AT_FDCWD,
                    l.as_path(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| ViewError::OpenLayer {
                    path: l.clone(),
                    source: e.into(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(LayerView { roots })
    }

    /// The contents of the regular file at `path` (resolved inside the view), `None` when
    /// nothing is there; an error when it is not a regular file or is larger than `cap`.
    pub fn read(&self, path: &str, cap: u64) -> Result<Option<Vec<u8>>, ViewError> {
        let err = |source: std::io::Error| ViewError::Read {
            path: path.to_string(),
            source,
        };
        let root: Vec<OwnedFd> = self
            .roots
            .iter()
            .map(OwnedFd::try_clone)
            .collect::<Result<_, _>>()
            .map_err(err)?;
        // Open directories of the path walked so far, one level per name; [0] is `/`.
        let mut levels: Vec<Vec<OwnedFd>> = vec![root];
        let mut todo: VecDeque<OsString> = names(Path::new(path).as_os_str());
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                if levels.len() > 1 {
                    levels.pop();
                }
                continue;
            }
            let Some(level) = levels.last() else {
                break;
            };
            match lookup(level, &name).map_err(|e| err(e.into()))? {
                Entry::Missing => return Ok(None),
                Entry::Dir(dirs) => levels.push(dirs),
                Entry::Symlink(target) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(ViewError::SymlinkLoop {
                            path: path.to_string(),
                        });
                    }
                    if target.as_bytes().starts_with(b"/") {
                        levels.truncate(1);
                    }
                    for n in names(&target).into_iter().rev() {
                        todo.push_front(n);
                    }
                }
                Entry::Other { index, stat } => {
                    if !todo.is_empty() {
                        return Ok(None); // a file used as a directory: ENOTDIR
                    }
                    if !is_type(&stat, SFlag::S_IFREG) {
                        return Err(ViewError::NotRegular {
                            path: path.to_string(),
                            kind: kind_of(&stat),
                        });
                    }
                    return read_regular(&level[index], &name, path, cap).map(Some);
                }
            }
        }
        Err(ViewError::NotRegular {
            path: path.to_string(),
            kind: "directory",
        })
    }
}

/// The names of `path` other than empty ones and `.`, in order.
fn names(path: &OsStr) -> VecDeque<OsString> {
    path.as_bytes()
        .split(|b| *b == b'/')
        .filter(|n| !n.is_empty() && *n != b".")
        .map(|n| OsStr::from_bytes(n).to_os_string())
        .collect()
}

/// Looks `name` up in the merged directory whose layer directories are `level`.
fn lookup(level: &[OwnedFd], name: &OsStr) -> Result<Entry, Errno> {
    let mut dirs: Vec<OwnedFd> = Vec::new();
    for (index, dir) in level.iter().enumerate() {
        let stat = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if is_type(&stat, SFlag::S_IFDIR) {
            let d = openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            let opaque = opaque(&d);
            dirs.push(d);
            if opaque {
                break;
            }
            continue;
        }
        if !dirs.is_empty() {
            break; // a non-directory (or whiteout) below hides the lower layers
        }
        if is_type(&stat, SFlag::S_IFCHR) && stat.st_rdev == 0 {
            return Ok(Entry::Missing);
        }
        if is_type(&stat, SFlag::S_IFLNK) {
            return Ok(Entry::Symlink(readlinkat(dir, name)?));
        }
        return Ok(Entry::Other { index, stat });
    }
    Ok(if dirs.is_empty() {
        Entry::Missing
    } else {
        Entry::Dir(dirs)
    })
}

/// Whether directory `dir` is marked opaque (hides the same directory of lower layers).
fn opaque(dir: &OwnedFd) -> bool {
    let mut value = [0u8; 2];
    // SAFETY: dir is an open fd, the name is NUL-terminated and value outlives the call,
    // which writes at most value.len() bytes.
    let n = unsafe {
        libc::fgetxattr(
            std::os::fd::AsRawFd::as_raw_fd(dir),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// Opens regular file `name` under `dir` (checked again on the open fd, in case it was
/// replaced) and reads it, at most `cap` bytes.
fn read_regular(dir: &OwnedFd, name: &OsStr, path: &str, cap: u64) -> Result<Vec<u8>, ViewError> {
    let err = |source: std::io::Error| ViewError::Read {
        path: path.to_string(),
        source,
    };
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    let stat = fstat(fd.as_fd()).map_err(|e| err(e.into()))?;
    if !is_type(&stat, SFlag::S_IFREG) {
        return Err(ViewError::NotRegular {
            path: path.to_string(),
            kind: kind_of(&stat),
        });
    }
    let too_large = || ViewError::TooLarge {
        path: path.to_string(),
        cap,
    };
    if u64::try_from(stat.st_size).unwrap_or(u64::MAX) > cap {
        return Err(too_large());
    }
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(err)?;
    if out.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(out)
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
