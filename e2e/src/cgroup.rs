//! A cgroup parent of the test's own: every crustd a test starts gets a unique
//! `runtime.cgroup_root` (`/crust-e2e-<pid>-<n>`), and the tree below it is removed from every
//! hierarchy when the test is done, also when it failed (processes still in it are killed
//! first). So tests never share crustd's default `/crust`, and leave no empty cgroups behind.
//! With the systemd cgroup driver the root is a slice, `crust_e2e_<pid>_<n>.slice`, which is
//! stopped through systemctl (every unit in it with it) before what is left is removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CGROUPFS: &str = "/sys/fs/cgroup";

/// A unique cgroup path (relative to every hierarchy's root) or systemd slice, removed on
/// drop.
#[derive(Debug)]
pub struct CgroupRoot {
    /// What crustd is configured with: the path, or the slice's name.
    name: String,
    /// The directory from each hierarchy's root.
    dir: String,
    /// Whether `name` is a slice.
    slice: bool,
}

static N: AtomicU32 = AtomicU32::new(0);

impl CgroupRoot {
    /// A fresh name `/<prefix>-<pid>-<n>`; nothing is created (crustd makes it on use).
    pub fn unique(prefix: &str) -> Self {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("/{prefix}-{}-{n}", std::process::id());
        Self {
            dir: name.clone(),
            name,
            slice: false,
        }
    }

    /// A fresh top-level slice `<prefix>_<pid>_<n>.slice` (no '-': that would nest it);
    /// systemd makes it when crustd first puts a unit in it.
    pub fn unique_slice(prefix: &str) -> Self {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}_{}_{n}.slice",
            prefix.replace('-', "_"),
            std::process::id()
        );
        Self {
            dir: format!("/{name}"),
            name,
            slice: true,
        }
    }

    /// The root a crustd was configured with (`runtime.cgroup_root`: a path, or a slice's
    /// name), to remove what is left of it.
    pub fn existing(name: &str) -> Self {
        let slice = name.ends_with(".slice");
        Self {
            dir: if slice {
                format!("/{name}")
            } else {
                name.to_string()
            },
            name: name.to_string(),
            slice,
        }
    }

    /// The cgroup path, e.g. `/crust-e2e-123-0`, or the slice, e.g. `crust_e2e_123_0.slice`.
    pub fn path(&self) -> &str {
        &self.name
    }

    /// The directories of this cgroup that exist, one per hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join(self.dir.trim_start_matches('/')))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// Kills what is left in the tree and removes it in every hierarchy, deepest first.
    pub fn remove(&self) {
        if self.slice {
            let _ = std::process::Command::new("systemctl")
                .args(["stop", &self.name])
                .stdin(std::process::Stdio::null())
                .status();
        }
        let dirs = self.dirs();
        if dirs.is_empty() {
            return;
        }
        let mut tree = Vec::new();
        for d in &dirs {
            walk(d, &mut tree);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut alive = false;
            for d in &tree {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    alive = true;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if !alive || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Deepest first: `walk` lists parents before their children.
        for d in tree.iter().rev() {
            if let Err(e) = std::fs::remove_dir(d) {
                eprintln!("cgroup {}: not removed: {e}", d.display());
            }
        }
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Every mounted hierarchy under /sys/fs/cgroup (v1 controllers, named ones, the v2 one),
/// or /sys/fs/cgroup itself on a pure v2 host.
pub fn hierarchies() -> Vec<PathBuf> {
    if Path::new(CGROUPFS).join("cgroup.controllers").exists() {
        return vec![PathBuf::from(CGROUPFS)];
    }
    std::fs::read_dir(CGROUPFS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists() && !p.is_symlink())
        .collect()
}

/// `dir` and every directory below it, parents first.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&e.path(), out);
        }
    }
}
