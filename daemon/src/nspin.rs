//! Pinned namespaces, for every kind a pod keeps without a process holding it: a pin is
//! `<state>/ns/<pod>/<kind>` (`net`: [`crate::network::netns`]; `ipc`, `uts`: the pod's
//! files; `pid`: the pod init), an empty file with the namespace's nsfs file bind-mounted
//! on it. This module is the one place that knows how a pin is made, recognised and
//! removed; the callers decide which namespaces to create and on which thread.
//!
//! Invariants: a pin exists only as a bind mount on a regular file of that name; removal is
//! idempotent (unmount until nothing is mounted there, unlink if present).

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Where `pod_id`'s namespace of `kind` (`net`, `ipc`, `uts`, `pid`) is pinned.
pub fn path(state: &Path, pod_id: &str, kind: &str) -> PathBuf {
    state.join("ns").join(pod_id).join(kind)
}

/// Whether `path` is a mounted namespace file (nsfs).
pub fn is_pinned(path: &Path) -> bool {
    match nix::sys::statfs::statfs(path) {
        Ok(s) => s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC,
        Err(_) => false,
    }
}

/// Creates the empty, read-only file a pin is mounted on (and its directory).
pub fn prepare(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o444)
        .open(path)
        .map(drop)
}

/// Bind-mounts the namespace file `ns` (`/proc/thread-self/ns/<kind>` on a thread that
/// has just unshared it, or `/proc/<pid>/ns/<kind>`) onto the [`prepare`]d `path`.
pub fn bind(ns: &str, path: &Path) -> std::io::Result<()> {
    mount(Some(ns), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(std::io::Error::from)
}

/// Unpins the namespace at `path`: unmounts it (stacked pins too) and unlinks the file.
/// Missing pieces are not errors.
pub fn unpin(path: &Path) -> std::io::Result<()> {
    loop {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
            Err(e) => return Err(e.into()),
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the pod's `ns/<pod>` directory that holds `pin` if nothing else is left in it.
pub fn remove_dir_if_empty(pin: &Path) {
    if let Some(dir) = pin.parent() {
        let _ = fs::remove_dir(dir); // only succeeds when empty: other pins may live there
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_layout() {
        assert_eq!(
            path(Path::new("/run/crust"), "p1", "ipc"),
            PathBuf::from("/run/crust/ns/p1/ipc")
        );
    }

    /// A pin of this process's own namespace (root only): recognised, unpinned once even
    /// when stacked twice, and unpinning again changes nothing.
    #[test]
    fn pin_unpin_is_idempotent() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = path(d.path(), "p1", "uts");
        prepare(&p).unwrap();
        assert!(!is_pinned(&p));
        bind("/proc/self/ns/uts", &p).unwrap();
        bind("/proc/self/ns/uts", &p).unwrap();
        assert!(is_pinned(&p));
        unpin(&p).unwrap();
        assert!(!p.exists());
        unpin(&p).unwrap();
        remove_dir_if_empty(&p);
        assert!(!d.path().join("ns/p1").exists());
    }
}
