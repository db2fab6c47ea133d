//! OOM notification: a file descriptor that becomes readable when the kernel reports a
//! memory event for the cgroup, so a shim can wait in its event loop instead of polling.
//!
//! - v1: an eventfd registered through `cgroup.event_control` against `memory.oom_control`
//!   (readable with an 8-byte counter after every OOM in the cgroup);
//! - v2: an inotify watch on `memory.events` (readable when any counter there changes).
//!
//! Either way the fd says "something may have happened": drain it and compare
//! [`crate::Cgroup::oom_kill_count`] with the previous value. The registration lives as long
//! as the returned fd, which is non-blocking and close-on-exec (ready for tokio's `AsyncFd`).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::cgroupfs;
use crate::CgroupError;

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::OomEvent {
        path: path.to_path_buf(),
        source,
    }
}

/// v1: eventfd + cgroup.event_control.
pub(crate) fn v1_eventfd(dir: &Path) -> Result<OwnedFd, CgroupError> {
    let oom_control = dir.join("memory.oom_control");
    let ctl = std::fs::File::open(&oom_control).map_err(err(&oom_control))?;
    // SAFETY: eventfd has no pointer arguments; a non-negative result is a new fd we own.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return Err(err(dir)(std::io::Error::last_os_error()));
    }
    // SAFETY: `efd` was just returned by eventfd and is owned by nothing else.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    cgroupfs::write(
        dir,
        "cgroup.event_control",
        &format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd()),
    )?;
    // The kernel keeps what it needs from the control file; only the eventfd must live on.
    Ok(efd)
}

/// v2: inotify watch on memory.events.
pub(crate) fn v2_inotify(dir: &Path) -> Result<OwnedFd, CgroupError> {
    let events = dir.join("memory.events");
    if !events.exists() {
        return Err(err(&events)(std::io::Error::from_raw_os_error(
            libc::ENOENT,
        )));
    }
    // SAFETY: no pointer arguments; a non-negative result is a new fd we own.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(err(&events)(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by inotify_init1 and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let c = CString::new(events.as_os_str().as_bytes())
        .map_err(|_| err(&events)(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call; `fd` is open.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
    if wd < 0 {
        return Err(err(&events)(std::io::Error::last_os_error()));
    }
    Ok(fd)
}
