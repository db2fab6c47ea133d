//! ID-mapped mounts (mount_setattr(2) `MOUNT_ATTR_IDMAP`), shared by the shim (the rootfs
//! overlay's lower layers) and crust-runc (bind mounts with `uidMappings`/`gidMappings`):
//!
//! - [`IdMap`]: one `container:host:size` mapping line, in the text form containerd uses in
//!   its `uidmap=`/`gidmap=` overlay options.
//! - [`userns_for`]: a user namespace with given maps, as an fd (what `MOUNT_ATTR_IDMAP`
//!   takes). The kernel has no call that makes one without a process, so a short-lived
//!   forked child unshares it and is reaped once the namespace is open.
//! - [`clone_idmapped`]: a detached copy of the mount at a path with an idmap applied, to be
//!   attached with [`attach`]; [`clone_tree`] the same without the idmap.
//!
//! Written here rather than taken from a crate: nix 0.31 and rustix as used in the
//! workspace wrap neither open_tree/move_mount nor mount_setattr, and the calls are three.
//!
//! Invariants: the forked child calls only async-signal-safe functions (it may be forked
//! from a multi-threaded process); every fd returned is close-on-exec.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::str::FromStr;

/// One mapping line: `size` ids from `container_id` in the namespace are `host_id...` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl fmt::Display for IdMap {
    /// containerd's option form, `container:host:size`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.container_id, self.host_id, self.size)
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error("id mapping {0:?} is not container:host:size")]
    Parse(String),
    #[error("id mapping {0} wraps past the last id")]
    Overflow(IdMap),
    #[error("create a user namespace for {what}")]
    Userns {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("clone the mount at {path:?}")]
    OpenTree {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("idmap the mount of {path:?}")]
    SetAttr {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("attach an idmapped mount at {path:?}")]
    Attach {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}

impl FromStr for IdMap {
    type Err = IdmapError;
    fn from_str(s: &str) -> Result<Self, IdmapError> {
        let bad = || IdmapError::Parse(s.to_string());
        let mut it = s.split(':').map(|p| p.parse::<u32>().map_err(|_| bad()));
        let m = match (it.next(), it.next(), it.next(), it.next()) {
            (Some(c), Some(h), Some(n), None) => IdMap {
                container_id: c?,
                host_id: h?,
                size: n?,
            },
            _ => return Err(bad()),
        };
        m.check()?;
        Ok(m)
    }
}

impl IdMap {
    /// A non-empty range that stays below 2^32 on both sides.
    pub fn check(&self) -> Result<(), IdmapError> {
        let fits = |start: u32| start.checked_add(self.size).is_some();
        if self.size == 0 {
            return Err(IdmapError::Parse(self.to_string()));
        }
        if !fits(self.container_id) || !fits(self.host_id) {
            return Err(IdmapError::Overflow(*self));
        }
        Ok(())
    }
}

fn map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A user namespace with `uids` and `gids` as its maps (setgroups left allowed), as an
/// `O_RDONLY|O_CLOEXEC` fd of its nsfs file. Needs CAP_SETUID/CAP_SETGID (root).
pub fn userns_for(uids: &[IdMap], gids: &[IdMap]) -> Result<OwnedFd, IdmapError> {
    let err = |source| IdmapError::Userns {
        what: format!(
            "uids {} gids {}",
            map_text(uids).trim(),
            map_text(gids).trim()
        ),
        source,
    };
    let mut ready = [0 as libc::c_int; 2];
    let mut done = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the arrays passed.
    cvt(unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) }.into()).map_err(err)?;
    // SAFETY: as above; the fds just made are owned here from now on.
    let (ready_r, ready_w) = unsafe {
        (
            OwnedFd::from_raw_fd(ready[0]),
            OwnedFd::from_raw_fd(ready[1]),
        )
    };
    // SAFETY: pipe2 writes two fds into the array passed.
    cvt(unsafe { libc::pipe2(done.as_mut_ptr(), libc::O_CLOEXEC) }.into()).map_err(err)?;
    // SAFETY: as above.
    let (done_r, done_w) =
        unsafe { (OwnedFd::from_raw_fd(done[0]), OwnedFd::from_raw_fd(done[1])) };
    // SAFETY: the child only calls async-signal-safe functions (unshare, write, read,
    // _exit) on fds opened before the fork, so forking a multi-threaded process is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls on valid fds; the child never returns.
        unsafe {
            let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                1
            } else {
                0
            };
            libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
            let mut b = 0u8;
            // Block until the parent has opened the namespace (it closes its end).
            libc::close(done_w.as_raw_fd());
            libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(done_r);
    let r = (|| -> io::Result<OwnedFd> {
        let mut ok = 0u8;
        // SAFETY: reads one byte into a local from an fd owned here.
        let n = unsafe { libc::read(ready_r.as_raw_fd(), (&mut ok as *mut u8).cast(), 1) };
        if n != 1 || ok != 1 {
            return Err(io::Error::other(
                "the helper could not unshare CLONE_NEWUSER",
            ));
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uids))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gids))?;
        Ok(std::fs::File::open(format!("/proc/{pid}/ns/user"))?.into())
    })();
    drop(done_w);
    let mut status = 0;
    // SAFETY: reaping our own child, which exits once `done` is closed.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    r.map_err(err)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_SYMLINKS: libc::c_uint = 0x10;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A detached clone of the mount at `path` (its submounts too when `recursive`), made with
/// the caller's privileges and path access: to be attached later by a process that could
/// not reach `path` itself (one in a user namespace).
pub fn clone_tree(path: &Path, recursive: bool) -> Result<OwnedFd, IdmapError> {
    let c = c_path(path).map_err(|source| IdmapError::OpenTree {
        path: path.into(),
        source,
    })?;
    let rec = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: open_tree with a valid C path; the result is a new fd owned here.
    let fd = cvt(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec,
        )
    })
    .map_err(|source| IdmapError::OpenTree {
        path: path.into(),
        source,
    })?;
    // SAFETY: open_tree returned a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A detached clone of the mount at `path` (its submounts too when `recursive`) shown
/// through the maps of `userns`: a file stored with id C appears owned by the host id that
/// C maps to in `userns` (so, inside that namespace, by C).
pub fn clone_idmapped(
    path: &Path,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> Result<OwnedFd, IdmapError> {
    let fd = clone_tree(path, recursive)?;
    let rec = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: attr is a valid mount_attr of the size passed; "" with AT_EMPTY_PATH acts on fd.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | rec,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map_err(|source| IdmapError::SetAttr {
        path: path.into(),
        source,
    })?;
    Ok(fd)
}

/// Attaches the detached mount `mnt` on `target` (a path, or `/proc/self/fd/N`: symlinks,
/// magic ones included, are followed).
pub fn attach(mnt: BorrowedFd<'_>, target: &Path) -> Result<(), IdmapError> {
    let err = |source| IdmapError::Attach {
        path: target.into(),
        source,
    };
    let c = c_path(target).map_err(err)?;
    // SAFETY: move_mount of an fd we hold onto a valid C path.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS,
        )
    })
    .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parse_and_print() {
        let m: IdMap = "0:65536:65536".parse().unwrap();
        assert_eq!(
            m,
            IdMap {
                container_id: 0,
                host_id: 65536,
                size: 65536
            }
        );
        assert_eq!(m.to_string(), "0:65536:65536");
        for bad in [
            "",
            "0:1",
            "0:1:2:3",
            "a:1:1",
            "0:1:0",
            "0:4294967295:2",
            "-1:0:1",
        ] {
            assert!(bad.parse::<IdMap>().is_err(), "{bad}");
        }
    }

    /// Root only: a file stored as uid/gid 0 shows as the mapped host ids through the
    /// clone; the source mount is unchanged.
    #[test]
    fn idmapped_bind_shows_mapped_owner() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("src"), d.path().join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("f"), "x").unwrap();
        let map = IdMap {
            container_id: 0,
            host_id: 200_000,
            size: 65536,
        };
        let ns = userns_for(&[map], &[map]).unwrap();
        let mnt = clone_idmapped(&src, ns.as_fd(), false).unwrap();
        attach(mnt.as_fd(), &dst).unwrap();
        let md = std::fs::metadata(dst.join("f")).unwrap();
        let orig = std::fs::metadata(src.join("f")).unwrap();
        // SAFETY: umount2 of a path we mounted.
        unsafe { libc::umount2(c_path(&dst).unwrap().as_ptr(), libc::MNT_DETACH) };
        assert_eq!((md.uid(), md.gid()), (200_000, 200_000));
        assert_eq!((orig.uid(), orig.gid()), (0, 0));
    }
}
