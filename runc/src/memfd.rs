//! A write-protected image of the runtime's own binary to re-execute from (CVE-2019-5736
//! class).
//!
//! Every process that enters a container (the init and `exec`'d processes) is re-executed
//! from an fd returned by [`protected_self`], so `/proc/<pid>/exe` seen from the container
//! can never be opened for writing:
//! - first choice: the binary seen through a *detached, read-only bind mount* of itself
//!   (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_RDONLY)`, as runc 1.2 does).
//!   It costs two syscalls instead of copying the whole binary, leaves nothing in the host's
//!   mount table, and any open for writing through it fails with EROFS;
//! - fallback (old kernels, no CAP_SYS_ADMIN), or `CRUST_RUNC_CLONE=memfd`: a copy in a memfd
//!   sealed against write/grow/shrink/further seals (runc 1.1's method).
//!
//! Invariant: the fd handed out is never writable, nor reachable writable through /proc.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Errors of making the sealed copy.
#[derive(Debug, thiserror::Error)]
pub enum MemfdError {
    #[error("memfd_create")]
    Create(#[source] std::io::Error),
    #[error("open /proc/self/exe")]
    OpenSelf(#[source] std::io::Error),
    #[error("copy /proc/self/exe into the memfd")]
    Copy(#[source] std::io::Error),
    #[error("seal the memfd")]
    Seal(#[source] std::io::Error),
}

/// Environment variable forcing the memfd method (`CRUST_RUNC_CLONE=memfd`).
pub const CLONE_ENV: &str = "CRUST_RUNC_CLONE";

/// An fd of this binary that can be exec'd (via /proc/self/fd/N) but never written.
pub fn protected_self() -> Result<OwnedFd, MemfdError> {
    if std::env::var_os(CLONE_ENV).is_none_or(|v| v != "memfd") {
        if let Ok(fd) = ro_bind_self() {
            return Ok(fd);
        }
    }
    sealed_self()
}

/// `struct mount_attr` of mount_setattr(2) (not in the libc crate for every target).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// An O_PATH fd of /proc/self/exe on a detached read-only bind mount of it.
fn ro_bind_self() -> std::io::Result<OwnedFd> {
    // SAFETY: open_tree with a valid C string path and flags; returns a new fd or -1.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    } as i32;
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr on our detached mount fd with a live, correctly sized struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Returns a sealed, close-on-exec memfd holding a copy of /proc/self/exe.
pub fn sealed_self() -> Result<OwnedFd, MemfdError> {
    let name =
        CString::new("crust-runc").map_err(|e| MemfdError::Create(std::io::Error::other(e)))?;
    // SAFETY: name is a valid C string; flags are valid memfd_create flags.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(MemfdError::Create(std::io::Error::last_os_error()));
    }
    // SAFETY: raw is a fresh fd we own.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let exe = File::open("/proc/self/exe").map_err(MemfdError::OpenSelf)?;
    let len = exe.metadata().map_err(MemfdError::OpenSelf)?.len() as usize;
    let mut left = len;
    while left > 0 {
        // SAFETY: both fds are open; a null offset uses and advances the file offsets.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                left,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(MemfdError::Copy(e));
        }
        if n == 0 {
            return Err(MemfdError::Copy(std::io::Error::other("short copy")));
        }
        left -= n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on an fd we own with a valid command.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(MemfdError::Seal(std::io::Error::last_os_error()));
    }
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ro_bind_is_not_writable() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: open_tree needs root");
            return;
        }
        let fd = ro_bind_self().expect("open_tree");
        let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let e = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect_err("must be read-only");
        // ETXTBSY wins while this very binary runs; the mount itself is read-only.
        assert!(
            matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
            "{e}"
        );
        let st = nix::sys::statvfs::statvfs(p.as_str()).expect("statvfs");
        assert!(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    }

    #[test]
    fn copy_is_sealed() {
        let fd = sealed_self().expect("memfd");
        // SAFETY: fcntl F_GET_SEALS on an open fd.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert!(seals & libc::F_SEAL_WRITE != 0);
        let mut f = File::from(fd);
        use std::io::Write;
        assert!(f.write_all(b"x").is_err());
    }
}
