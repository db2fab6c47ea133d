//! `prepare` inside a real user namespace (root only): mounts copied into a mount namespace
//! owned by a user namespace have their flags locked, mknod is refused and sysfs needs a
//! network namespace — the code paths rootless and userns containers take.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::super::mount::sys_mount;
use super::super::{prepare, RootfsOptions};
use super::{fixture, is_root, mount_at, spec, vfs_flags};

/// Runs `f` in a forked child (single-threaded, as unshare(CLONE_NEWUSER) requires) and
/// returns its exit status; a panic in `f` exits with 101 after printing it.
fn in_child(f: impl FnOnce()) -> i32 {
    // SAFETY: the child runs `f` and _exits without returning into the harness; glibc's
    // fork resets allocator locks so allocating in the child is safe.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => 0,
            Err(_) => 101,
        };
        // SAFETY: ends the forked child immediately.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

fn check(r: libc::c_int, what: &str) {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
}

#[test]
fn prepare_in_a_user_namespace_keeps_locked_flags_and_binds_devices() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let locked = fx.outside.join("locked");
    std::fs::create_dir_all(&locked).expect("mkdir");
    let sp = spec(serde_json::json!({
        "mounts": [
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/locked", "type": "bind", "source": locked, "options": ["rbind", "ro"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        ],
        "linux": {"namespaces": [{"type": "mount"}, {"type": "user"}]}
    }));
    let rootfs = fx.rootfs.clone();
    let status = in_child(move || {
        check(
            // SAFETY: unshare with a constant flag, in this test's child.
            unsafe { libc::unshare(libc::CLONE_NEWNS) },
            "unshare mount ns",
        );
        sys_mount(
            None,
            "/".as_ref(),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )
        .expect("rprivate");
        // A host mount with nosuid,nodev,noexec: these flags get locked in the user ns.
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        sys_mount(
            Some("tmpfs".as_ref()),
            locked.as_os_str(),
            Some("tmpfs"),
            flags,
            None,
        )
        .expect("tmpfs");
        check(
            // SAFETY: unshare with a constant flag, in this test's child.
            unsafe { libc::unshare(libc::CLONE_NEWUSER) },
            "unshare user ns",
        );
        std::fs::write("/proc/self/setgroups", "deny").expect("setgroups");
        std::fs::write("/proc/self/uid_map", "0 0 1").expect("uid_map");
        std::fs::write("/proc/self/gid_map", "0 0 1").expect("gid_map");
        check(
            // SAFETY: unshare with a constant flag, in this test's child.
            unsafe { libc::unshare(libc::CLONE_NEWNS) },
            "unshare owned mount ns",
        );
        let opts = RootfsOptions {
            in_user_ns: true,
            ..RootfsOptions::default()
        };
        prepare(&sp, &rootfs, &opts, &mut || Ok(())).expect("prepare in user ns");
        let f = vfs_flags(&rootfs.join("locked"));
        assert_eq!(f & libc::ST_RDONLY, libc::ST_RDONLY, "ro applied");
        assert_eq!(
            f & (libc::ST_NOSUID | libc::ST_NODEV | libc::ST_NOEXEC),
            libc::ST_NOSUID | libc::ST_NODEV | libc::ST_NOEXEC,
            "locked flags kept"
        );
        // sysfs without a network namespace: rbind of the host's /sys, read-only.
        assert!(
            mount_at(&rootfs.join("sys/fs/cgroup")).is_some(),
            "rbind carries submounts"
        );
        assert_eq!(
            vfs_flags(&rootfs.join("sys")) & libc::ST_RDONLY,
            libc::ST_RDONLY
        );
        for name in ["null", "zero", "urandom", "tty"] {
            let p = rootfs.join("dev").join(name);
            assert!(mount_at(&p).is_some(), "{name} bound from the host");
            assert!(std::fs::metadata(&p)
                .expect(name)
                .file_type()
                .is_char_device());
        }
        assert!(Path::new(&rootfs.join("dev/ptmx"))
            .symlink_metadata()
            .is_ok());
    });
    assert_eq!(status, 0, "child failed (see its output above)");
}
