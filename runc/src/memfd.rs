//! A sealed in-memory copy of the runtime's own binary (CVE-2019-5736 class).
//!
//! Every process that enters a container (the init and `exec`'d processes) is re-executed
//! from this copy, so `/proc/<pid>/exe` inside the container points at an anonymous,
//! write-sealed memfd, never at the `crust-runc` file on the host.
//! Invariant: the copy is sealed (no write, grow, shrink, further seals) before use.

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
