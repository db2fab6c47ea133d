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
//!
//! The notification is not enough on cgroup v2 with systemd: the kernel rate-limits
//! `memory.events` notifications (the memory pressure before the kill already sent one),
//! and systemd removes a scope, `memory.events` with it, as soon as its last process is
//! gone, often before the delayed notification. So the kills are also counted in the
//! parent cgroup (a pod's slice, which counts its whole subtree and outlives its
//! containers): [`Claims`] holds, per parent, how many of its kills have been reported
//! for some container. A SIGKILLed init whose cgroup is gone at its exit takes one
//! unclaimed kill of its parent; a container SIGKILLed for another reason after a
//! sibling's OOM kill finds that kill claimed by the sibling.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crust_cgroups::{Cgroup, CgroupError};
use tokio::task::JoinHandle;

/// OOM kills reported so far (or there when first seen) per parent cgroup directory.
pub type Claims = Arc<Mutex<HashMap<PathBuf, u64>>>;

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
    claims: Claims,
    /// The parent cgroup whose count [`Claims`] keeps (v2).
    parent: Option<PathBuf>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Notes `n` kills reported for a child of `parent`.
fn claim(claims: &Claims, parent: &Option<PathBuf>, n: u64) {
    if let Some(p) = parent {
        *lock(claims).entry(p.clone()).or_default() += n;
    }
}

/// Starts watching `cg`; `on_oom` runs once per observed OOM kill. None if the cgroup
/// offers no OOM notification.
pub fn watch(
    cg: Cgroup,
    claims: Claims,
    on_oom: impl Fn() + Send + Sync + 'static,
) -> Option<OomWatch> {
    let fd = cg.oom_event_fd().ok()?;
    let afd = crate::stdio::async_fd(fd).ok()?;
    let seen = Arc::new(Mutex::new(Seen {
        last: cg.oom_kill_count().unwrap_or(0),
        reported: false,
    }));
    // Kills of the parent before this watch are not this container's.
    let parent = match cg.parent_oom_kill_count() {
        Ok(Some((p, n))) => {
            lock(&claims).entry(p.clone()).or_insert(n);
            Some(p)
        }
        _ => None,
    };
    let on_oom: OnOom = Arc::new(on_oom);
    let v1 = !cg.is_v2();
    let task = {
        let (cg, seen, on_oom) = (cg.clone(), seen.clone(), on_oom.clone());
        let (claims, parent) = (claims.clone(), parent.clone());
        tokio::spawn(async move {
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
                let mut s = lock(&seen);
                let now = match cg.oom_kill_count() {
                    // The cgroup is gone: the kernel's last signal.
                    Err(CgroupError::NotFound { .. }) => return,
                    Ok(n) => n,
                    Err(_) => s.last + 1,
                };
                // v1 signals when the cgroup hits OOM, before the kill is counted.
                if now > s.last || v1 {
                    claim(&claims, &parent, now.saturating_sub(s.last));
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
        claims,
        parent,
    })
}

impl OomWatch {
    /// Stops watching after reporting a kill not reported yet: one counted in the cgroup
    /// since the last read, or, when the cgroup is gone and the init was `sigkilled`, an
    /// unclaimed kill of the parent. Returns whether any OOM kill was reported for the
    /// cgroup.
    pub fn finish(self, sigkilled: bool) -> bool {
        self.task.abort();
        let mut s = lock(&self.seen);
        let new = match self.cg.oom_kill_count() {
            Ok(now) if now > s.last => {
                claim(&self.claims, &self.parent, now - s.last);
                s.last = now;
                true
            }
            Ok(_) => false,
            Err(_) if sigkilled && !s.reported => self.claim_from_parent(),
            Err(_) => false,
        };
        if new {
            s.reported = true;
            drop(s);
            (self.on_oom)();
            return true;
        }
        s.reported
    }

    /// Takes one kill of the parent that no container has claimed, if there is one.
    fn claim_from_parent(&self) -> bool {
        let Ok(Some((parent, now))) = self.cg.parent_oom_kill_count() else {
            return false;
        };
        let mut claims = lock(&self.claims);
        let claimed = claims.entry(parent).or_insert(now);
        if now > *claimed {
            *claimed += 1;
            true
        } else {
            false
        }
    }

    /// Stops watching.
    pub fn stop(self) {
        self.task.abort();
    }
}
