//! Noticing a shim's death: a pidfd of the shim process (any process, not only crustd's
//! children: after a restart the shims are nobody's children) that becomes readable when
//! it exits, and a probe of its socket for when no pid can be had.

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use super::Shim;
use crate::error::{ErrorKind, Kind as _};

/// A watched process.
pub struct PidFd(tokio::io::unix::AsyncFd<OwnedFd>);

impl PidFd {
    /// Opens a pidfd of `pid`; `Ok(None)` when no such process exists (it already exited).
    pub fn open(pid: i32) -> std::io::Result<Option<PidFd>> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ESRCH) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        // SAFETY: raw is a fresh fd nobody else owns (pidfds are always close-on-exec).
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns `fd` until it is dropped, so the registered fd stays open
        // and refers to this pidfd for the registration's whole life.
        let afd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }?;
        Ok(Some(PidFd(afd)))
    }

    /// Resolves once the process has exited (a pidfd is readable from then on).
    pub async fn exited(&self) {
        let _ = self.0.readable().await;
    }
}

/// What became of a shim the watcher was asked to follow.
pub enum Watch {
    /// Its process, to wait on.
    Process(PidFd),
    /// It is gone already.
    Gone,
    /// Cannot tell (it answers but not with its pid, or pidfds are missing).
    Unknown,
}

/// Finds the process behind `shim` (its pid, from `Connect`) and opens a pidfd on it. A
/// second `Connect` after the open proves the pidfd is the shim's and not a process that
/// reused the pid of a shim that died in between.
pub async fn follow(shim: &Shim, pod_id: &str) -> Watch {
    // A freshly launched shim may take a while to serve under load: its connection waits in
    // the listen backlog, and ping's deadline is 5 s.
    for _ in 0..12 {
        match shim.ping(pod_id).await {
            Ok(pid) if pid > 1 => {
                let fd = match PidFd::open(pid as i32) {
                    Ok(Some(fd)) => fd,
                    Ok(None) => return Watch::Gone,
                    Err(e) => {
                        tracing::warn!(pod = %pod_id, error = %e, "pidfd of the shim");
                        return Watch::Unknown;
                    }
                };
                return match shim.ping(pod_id).await {
                    Ok(_) => Watch::Process(fd),
                    Err(_) if socket_dead(shim.address()) => Watch::Gone,
                    Err(_) => Watch::Unknown,
                };
            }
            Ok(_) => return Watch::Unknown,
            Err(e) if e.kind() == ErrorKind::DeadlineExceeded => continue,
            Err(_) if socket_dead(shim.address()) => return Watch::Gone,
            Err(e) => {
                tracing::warn!(pod = %pod_id, error = %e, "cannot follow the shim");
                return Watch::Unknown;
            }
        }
    }
    Watch::Unknown
}

/// Whether nothing listens on the shim socket at `address` any more (the file is gone or
/// connecting is refused). A socket a live process still holds open accepts connections.
pub fn socket_dead(address: &str) -> bool {
    let path = address.trim_start_matches("unix://");
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        ),
    }
}

/// How long a dead shim's cleanup waits for the runtime's `delete` of one container.
pub const CLEANUP: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pidfd_becomes_ready_when_the_process_exits() {
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let fd = PidFd::open(child.id() as i32).unwrap().expect("alive");
        tokio::time::timeout(Duration::from_secs(10), fd.exited())
            .await
            .expect("exit noticed");
        child.wait().unwrap();
        assert!(PidFd::open(child.id() as i32).unwrap().is_none());
    }

    #[test]
    fn a_socket_nobody_listens_on_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sock");
        let addr = format!("unix://{}", p.display());
        assert!(socket_dead(&addr), "missing file");
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        assert!(!socket_dead(&addr));
        drop(l);
        assert!(socket_dead(&addr), "bound file, no listener");
    }
}
