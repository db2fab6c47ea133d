//! Tests of the rootfs module. Those that mount need root: each runs in a fresh thread
//! with its own mount namespace (unshare(CLONE_NEWNS) only affects the calling thread), so
//! every mount it makes vanishes with the thread, even when an assertion fails. Temporary
//! directories are removed by their guards on the host side.

mod escape;
mod finalize;
mod mounts;
mod resolver;
mod userns;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::mountinfo::{self, MountInfo};

/// True when running as root; otherwise prints why the test is skipped.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        true
    } else {
        eprintln!("skipped: this test needs root (CI runs as root)");
        false
    }
}

/// Runs `f` in a new thread with a private mount namespace; re-raises its panic.
fn in_mount_ns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(move || {
        assert_eq!(
            // SAFETY: unshare with a constant flag; only this thread's fs/mount ns change.
            unsafe { libc::unshare(libc::CLONE_NEWNS) },
            0,
            "unshare(CLONE_NEWNS)"
        );
        super::mount::sys_mount(
            None,
            std::ffi::OsStr::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )
        .expect("make / rprivate");
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A bundle-like temp dir: `rootfs/` (with a few dirs and a marker) and `outside/` (a host
/// directory outside the root, holding only `marker`).
struct Fixture {
    _dir: tempfile::TempDir,
    base: PathBuf,
    rootfs: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("crust-rootfs-test")
        .tempdir()
        .expect("tempdir");
    let base = std::fs::canonicalize(dir.path()).expect("canonicalize");
    let rootfs = base.join("rootfs");
    let outside = base.join("outside");
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    std::fs::write(rootfs.join("marker"), "inside").expect("marker");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("marker"), "outside").expect("outside marker");
    Fixture {
        _dir: dir,
        base,
        rootfs,
        outside,
    }
}

/// A spec from a JSON fragment merged over a minimal base.
fn spec(extra: serde_json::Value) -> Spec {
    let mut base = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "mounts": [],
        "linux": {"namespaces": [{"type": "mount"}]}
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).expect("spec parses")
}

/// The calling thread's mount at exactly `path`, if any (the last one stacked there).
fn mount_at(path: &Path) -> Option<MountInfo> {
    mountinfo::read_self()
        .expect("mountinfo")
        .into_iter()
        .rev()
        .find(|m| m.mount_point == path)
}

/// statvfs f_flag of the mount holding `path`.
fn vfs_flags(path: &Path) -> libc::c_ulong {
    let f = std::fs::File::open(path).expect("open for statvfs");
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer.
    assert_eq!(unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) }, 0);
    st.f_flag
}

/// Size in bytes of the filesystem holding `path`.
fn vfs_size(path: &Path) -> u64 {
    let f = std::fs::File::open(path).expect("open for statvfs");
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer.
    assert_eq!(unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) }, 0);
    st.f_blocks * st.f_frsize
}

/// Names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// errno of an io::Error.
fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}
