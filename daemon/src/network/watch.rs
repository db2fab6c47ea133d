//! Watches the CNI conf dir with inotify (hand-rolled on nix: one fd, one loop; the
//! `notify` crate would add a thread and a dependency for the same few lines) and
//! reloads the network selection on every change, so dropping a config in switches to
//! CNI without a restart and removing it falls back to the built-in bridge.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Weak;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use super::error::{NetworkError, Result};
use super::NetworkManager;

struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Starts watching the conf dir of `manager` (created if missing). The task ends when
/// the manager is dropped or the returned handle is aborted.
pub(crate) fn spawn(manager: Weak<NetworkManager>) -> Result<JoinHandle<()>> {
    let Some(m) = manager.upgrade() else {
        return Err(NetworkError::NotReady("network manager dropped".into()));
    };
    let dir = m.config().cni.conf_dir.clone();
    drop(m);
    let err = |source: std::io::Error| NetworkError::Watch {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let ino =
        Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(|e| err(e.into()))?;
    ino.add_watch(
        &dir,
        AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF,
    )
    .map_err(|e| err(e.into()))?;
    // SAFETY: InotifyFd owns the inotify fd; it stays open and the same for the whole
    // life of the AsyncFd, which owns the InotifyFd.
    let fd = unsafe { AsyncFd::register(InotifyFd(ino)) }.map_err(|e| err(e.into()))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            match guard.get_inner().0.read_events() {
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "CNI conf dir watch ended");
                    return;
                }
            }
            let Some(m) = manager.upgrade() else { return };
            m.reload();
        }
    }))
}
