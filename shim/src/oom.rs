//! OOM-kill notification for one container's cgroup: the shim's event loop around
//! [`Cgroup::oom_event_fd`] (v1 eventfd on `memory.oom_control`, v2 inotify on
//! `memory.events`; crust-cgroups owns those facts).
//!
//! On v1 a wake-up while the cgroup still exists is an OOM (the kernel signals before it
//! counts the kill, and once more when the cgroup is removed); on v2 the `oom_kill` counter
//! must have grown, so changes of other counters are not reported as OOMs.

use crust_cgroups::{Cgroup, CgroupError};
use tokio::task::JoinHandle;

/// Starts watching `cg`; `on_oom` runs once per observed OOM kill.
pub fn watch(cg: Cgroup, on_oom: impl Fn() + Send + 'static) -> Option<JoinHandle<()>> {
    let fd = cg.oom_event_fd().ok()?;
    let afd = crate::stdio::async_fd(fd).ok()?;
    let mut last = cg.oom_kill_count().unwrap_or(0);
    let v1 = !cg.is_v2();
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
            let now = match cg.oom_kill_count() {
                // The cgroup is gone: the kernel's last signal.
                Err(CgroupError::NotFound { .. }) => return,
                Ok(n) => n,
                Err(_) => last + 1,
            };
            // v1 signals when the cgroup hits OOM, before the kill is counted.
            if now > last || v1 {
                last = now;
                on_oom();
            }
        }
    }))
}
