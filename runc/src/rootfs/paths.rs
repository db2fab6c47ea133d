//! After pivot: masked paths, read-only paths, read-only root, /dev read-only, and the
//! rootfsPropagation of the new "/".
//!
//! Invariants: paths are resolved inside "/" (which is now the container's root) with the
//! in-root resolver and mounted through `/proc/self/fd/N` when the container has /proc
//! mounted (else through the resolved path itself); a path that does not exist is skipped,
//! as runc does.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::mount::{remount_bind, sys_mount};
use super::resolve::{self, Resolver};
use super::RootfsError;

/// Opens `path` in the current root; `None` when it does not exist.
fn open(path: &Path, resolver: Resolver) -> io::Result<Option<OwnedFd>> {
    let root = resolve::open_dir_path(Path::new("/"))?;
    match resolve::open_in(root.as_raw_fd(), path, libc::O_PATH, resolver) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How to name `fd` (opened at `path`) as a mount target.
fn target(fd: &OwnedFd, path: &Path) -> OsString {
    if Path::new("/proc/self/fd").exists() {
        OsString::from(resolve::proc_fd_path(fd))
    } else {
        path.as_os_str().to_os_string()
    }
}

/// Binds `path` onto itself and remounts it read-only.
pub(crate) fn readonly_path(path: &Path, resolver: Resolver) -> Result<(), RootfsError> {
    let err = |source| RootfsError::ReadonlyPath {
        path: path.to_path_buf(),
        source,
    };
    let Some(fd) = open(path, resolver).map_err(err)? else {
        return Ok(());
    };
    let t = target(&fd, path);
    sys_mount(Some(&t), &t, None, libc::MS_BIND | libc::MS_REC, None).map_err(err)?;
    let Some(top) = open(path, resolver).map_err(err)? else {
        return Ok(());
    };
    let t = target(&top, path);
    remount_bind(&t, top.as_raw_fd(), libc::MS_RDONLY, libc::MS_REC).map_err(err)
}

/// Hides `path`: /dev/null bound over a file, an empty read-only tmpfs over a directory.
pub(crate) fn mask_path(path: &Path, resolver: Resolver) -> Result<(), RootfsError> {
    let err = |source| RootfsError::MaskPath {
        path: path.to_path_buf(),
        source,
    };
    let Some(fd) = open(path, resolver).map_err(err)? else {
        return Ok(());
    };
    let t = target(&fd, path);
    if resolve::file_type(fd.as_raw_fd()).map_err(err)? == libc::S_IFDIR {
        sys_mount(
            Some(OsStr::new("tmpfs")),
            &t,
            Some("tmpfs"),
            libc::MS_RDONLY,
            None,
        )
        .map_err(err)
    } else {
        sys_mount(Some(OsStr::new("/dev/null")), &t, None, libc::MS_BIND, None).map_err(err)
    }
}

/// Remounts the mount at `path` (the root or /dev) read-only, keeping its other flags.
pub(crate) fn remount_readonly(path: &Path, resolver: Resolver) -> Result<(), RootfsError> {
    let err = |source| RootfsError::ReadonlyPath {
        path: path.to_path_buf(),
        source,
    };
    let Some(fd) = open(path, resolver).map_err(err)? else {
        return Ok(());
    };
    let t = target(&fd, path);
    remount_bind(&t, fd.as_raw_fd(), libc::MS_RDONLY, 0).map_err(err)
}

/// Applies a propagation flag to the new "/".
pub(crate) fn root_propagation(flag: libc::c_ulong) -> Result<(), RootfsError> {
    sys_mount(None, OsStr::new("/"), None, flag, None).map_err(|source| RootfsError::Propagation {
        path: "/".into(),
        source,
    })
}
