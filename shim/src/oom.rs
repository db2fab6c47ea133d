//! OOM-kill notification for one container's cgroup: the shim's event loop around
//! [`Cgroup::oom_event_fd`] (v1 eventfd on `memory.oom_control`, v2 inotify on
//! `memory.events`; crust-cgroups owns those facts).
//!
//! On v1 a wake-up while the cgroup still exists is an OOM (the kernel signals before it
//! counts the kill, and once more when the cgroup is removed); on v2 the `oom_kill` counter
//! must have grown, so changes of other counters are not reported as OOMs.
//!
//! When the container's init exits, [`OomWatch::finish`] reads the counter once more and
//! reports a kill the loop has not seen yet, so that a container's `TaskOOM` is published
//! before its `TaskExit` (and before `Wait` returns). The loop and `finish` share the last
//! count seen, so each kill is reported once.

use std::sync::{Arc, Mutex};

use crust_cgroups::{Cgroup, CgroupError};
use tokio::task::JoinHandle;

/// What has been seen of the cgroup's OOM kills.
#[derive(Default)]
struct Seen {
    /// The last `oom_kill` count read.
    last: u64,
    /// Whether a kill has been reported.
    reported: bool,
}

type OnOom = Arc<dyn Fn() + Send + Sync>;

/// A running watch of one container's cgroup.
pub struct OomWatch {
    task: JoinHandle<()>,
    seen: Arc<Mutex<Seen>>,
    cg: Cgroup,
    on_oom: OnOom,
}

/// Starts watching `cg`; `on_oom` runs once per observed OOM kill. None if the cgroup
/// offers no OOM notification.
pub fn watch(cg: Cgroup, on_oom: impl Fn() + Send + Sync + 'static) -> Option<OomWatch> {
    let fd = cg.oom_event_fd().ok()?;
    let afd = crate::stdio::async_fd(fd).ok()?;
    let seen = Arc::new(Mutex::new(Seen {
        last: cg.oom_kill_count().unwrap_or(0),
        reported: false,
    }));
    let on_oom: OnOom = Arc::new(on_oom);
    let v1 = !cg.is_v2();
    let task = {
        let (cg, seen, on_oom) = (cg.clone(), seen.clone(), on_oom.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok(mut g) = afd.readable().await else {
                    return;
                };
                let r =
                    g.try_io(|f| nix::unistd::read(f.get_ref(), &mut buf).map_err(Into::into));
                match r {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return,
                    Err(_would_block) => continue,
                }
                let mut s = lock(&seen);
                let now = match cg.oom_kill_count() {
                    // The cgroup is gone: the kernel's last signal.
                    Err(CgroupError::NotFound { .. }) => return,
                    Ok(n) => n,
                    Err(_) => s.last + 1,
                };
                // v1 signals when the cgroup hits OOM, before the kill is counted.
                if now > s.last || v1 {
                    s.last = now;
                    s.reported = true;
                    drop(s);
                    on_oom();
                }
            }
        })
    };
    Some(OomWatch {
        task,
        seen,
        cg,
        on_oom,
    })
}

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OomWatch {
    /// Stops watching after reporting a kill counted since the last read (if the cgroup is
    /// still there to say so). Returns whether any OOM kill was reported for the cgroup.
    pub fn finish(self) -> bool {
        self.task.abort();
        let mut s = lock(&self.seen);
        if let Ok(now) = self.cg.oom_kill_count() {
            if now > s.last {
                s.last = now;
                s.reported = true;
                drop(s);
                (self.on_oom)();
                return true;
            }
        }
        s.reported
    }

    /// Stops watching.
    pub fn stop(self) {
        self.task.abort();
    }
}
