//! Start-up sweep of what killed test processes left behind. A test killed by SIGKILL runs
//! none of its guards' `Drop`: its crustd directory (`/tmp/.tmpXXXXXX`) keeps a running
//! crustd, shims and containers, nsfs, shm and overlay mounts, and through the pods'
//! network namespaces their veths.
//!
//! Ownership is proven by a lock, never guessed: every harness crustd directory holds
//! [`LOCK`], flock(2)ed by the test process for as long as the directory is in use. The
//! kernel drops the lock when that process dies, however it dies (a pid file alone could
//! name a reused pid). A directory is swept only when its lock can be taken, so a live
//! test's directory is never touched; the lock file is made under another name, locked, and
//! only then renamed into place, so no sweeper ever sees it unlocked. Directories without
//! the lock (not the harness's, or made by an older harness) are left alone.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// The lock file in a harness crustd directory; it holds the owner's pid, for people.
pub const LOCK: &str = "harness.lock";

/// A test process's hold on its crustd directory: released on drop, or by the kernel when
/// the process dies.
#[derive(Debug)]
pub struct Lease {
    _held: Flock<File>,
}

impl Lease {
    /// Takes the lease on `dir`, which this process just made.
    pub fn take(dir: &Path) -> Lease {
        let tmp = dir.join(format!(".{LOCK}.new"));
        // std opens with O_CLOEXEC: crustd and other children never inherit the lock.
        let f = File::create(&tmp).expect("create the harness lock");
        let mut held = Flock::lock(f, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| e)
            .expect("lock a directory this process just made");
        writeln!(held, "{}", std::process::id()).expect("write the harness lock");
        std::fs::rename(&tmp, dir.join(LOCK)).expect("publish the harness lock");
        Lease { _held: held }
    }
}

/// [`sweep_dead`] of `parent`, once per test process and parent (before its first crustd
/// there); says what it swept.
pub fn sweep_once(parent: &Path) {
    static DONE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if !done
        .get_or_insert_with(HashSet::new)
        .insert(parent.to_path_buf())
    {
        return;
    }
    for d in sweep_dead(parent) {
        eprintln!(
            "e2e harness: removed {} (its test process is gone)",
            d.display()
        );
    }
}

/// Cleans up and removes every directory directly under `parent` whose harness lock nobody
/// holds (its test process is dead); returns them.
pub fn sweep_dead(parent: &Path) -> Vec<PathBuf> {
    let mut swept = Vec::new();
    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let dir = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(f) = File::open(dir.join(LOCK)) else {
            continue;
        };
        // Held while cleaning, so two sweepers never clean the same directory.
        let Ok(_held) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        clean(&dir);
        swept.push(dir);
    }
    swept
}

/// What a crustd directory's dead test left: crustd itself first (so it starts nothing
/// more), then what [`crate::pods::Leftovers`] removes (containers, shims, pod inits,
/// mounts, container cgroups), the crustd's cgroup root, and the directory.
pub fn clean(dir: &Path) {
    kill_processes_naming(dir);
    drop(crate::pods::Leftovers(dir.to_path_buf()));
    if let Some(root) = cgroup_root(dir) {
        drop(crate::cgroup::CgroupRoot::existing(&root));
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGKILLs every process with `dir` (or a path below it) among its arguments, as crustd's
/// `--root`, `--state` and `--config`, and waits (5 s at most) until they are gone.
fn kill_processes_naming(dir: &Path) {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let names_dir = cmdline
            .split(|b| *b == 0)
            .map(|a| Path::new(std::ffi::OsStr::from_bytes(a)))
            .any(|a| a.starts_with(dir));
        if names_dir {
            if let Ok(pid) = name.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                pids.push(pid);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// The `runtime.cgroup_root` of the directory's crustd config, if it names one.
fn cgroup_root(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    let t: toml::Table = toml::from_str(&text).ok()?;
    Some(t.get("runtime")?.get("cgroup_root")?.as_str()?.to_string())
}
