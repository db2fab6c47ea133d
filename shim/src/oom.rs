//! OOM-kill notification for one container's cgroup.
//!
//! cgroup v1: an eventfd registered through `cgroup.event_control` on
//! `memory.oom_control` (the kernel signals it on every OOM in the cgroup, and once more
//! when the cgroup is removed). cgroup v2: inotify on `memory.events`. In both cases the
//! On v1 a wake-up while the cgroup still exists is an OOM (the kernel signals before
//! it counts the kill); on v2 the `oom_kill` counter must have grown, so changes of
//! other counters are not reported as OOMs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::task::JoinHandle;

use crate::cgroup::Cgroup;

/// Starts watching `cg`; `on_oom` runs once per observed OOM kill.
pub fn watch(cg: Cgroup, on_oom: impl Fn() + Send + 'static) -> Option<JoinHandle<()>> {
    let dir = cg.memory_dir()?.to_path_buf();
    let fd = match &cg {
        Cgroup::V1 { .. } => v1_eventfd(&dir)?,
        Cgroup::V2(_) => v2_inotify(&dir)?,
    };
    let afd = crate::stdio::async_fd(fd).ok()?;
    let mut last = cg.oom_kill_count().unwrap_or(0);
    Some(tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok(mut g) = afd.readable().await else {
                return;
            };
            let r = g.try_io(|f| nix::unistd::read(f.get_ref(), &mut buf).map_err(Into::into));
            match r {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_would_block) => continue,
            }
            if !dir.exists() {
                return;
            }
            let now = cg.oom_kill_count().unwrap_or(last + 1);
            // v1 signals when the cgroup hits OOM, before the kill is counted.
            if now > last || matches!(cg, Cgroup::V1 { .. }) {
                last = now;
                on_oom();
            }
        }
    }))
}

fn v1_eventfd(dir: &std::path::Path) -> Option<OwnedFd> {
    // SAFETY: eventfd returns a new fd or -1; we take ownership of it right away.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return None;
    }
    // SAFETY: efd is a fresh, valid fd owned by nobody else.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    let ctl = std::fs::File::open(dir.join("memory.oom_control")).ok()?;
    let line = format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd());
    std::fs::write(dir.join("cgroup.event_control"), line).ok()?;
    // The registration holds its own reference to memory.oom_control.
    drop(ctl);
    Some(efd)
}

fn v2_inotify(dir: &std::path::Path) -> Option<OwnedFd> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
    ino.add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
        .ok()?;
    Some(OwnedFd::from(ino))
}
