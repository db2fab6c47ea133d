//! pivot_root / no_pivot and what `finalize` does after it (root only): masked paths,
//! read-only paths, read-only root and /dev, rootfsPropagation.

use std::path::Path;

use super::super::{finalize, pivot, prepare, RootfsOptions};
use super::{errno, fixture, in_mount_ns, is_root, mount_at, names, spec, vfs_flags};

#[test]
fn pivot_then_masked_readonly_paths_and_readonly_root() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let r = &fx.rootfs;
    std::fs::write(r.join("secret.txt"), "top secret").expect("write");
    std::fs::create_dir_all(r.join("secretdir")).expect("mkdir");
    std::fs::write(r.join("secretdir/inner"), "hidden").expect("write");
    std::fs::create_dir_all(r.join("rodir")).expect("mkdir");
    std::fs::write(r.join("rodir/file"), "readable").expect("write");
    std::os::unix::fs::symlink("/etc", r.join("masklink")).expect("symlink");
    std::fs::create_dir_all(r.join("etc/conf")).expect("mkdir");
    let sp = spec(serde_json::json!({
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}],
            "rootfsPropagation": "rshared",
            "maskedPaths": ["/secret.txt", "/secretdir", "/missing", "/proc/kcore", "/proc/timer_list", "/proc/acpi", "/masklink/conf"],
            "readonlyPaths": ["/rodir", "/proc/sys", "/missing-too"]
        }
    }));
    let rootfs = r.clone();
    let host_base = fx.base.clone();
    in_mount_ns(move || {
        prepare(&sp, &rootfs, &RootfsOptions::default(), &mut || Ok(())).expect("prepare");
        pivot(&rootfs, &RootfsOptions::default()).expect("pivot");
        assert_eq!(std::env::current_dir().expect("cwd"), Path::new("/"));
        assert_eq!(
            std::fs::read_to_string("/marker").expect("marker"),
            "inside"
        );
        // The old root is gone: the host's temp dir is not reachable.
        assert!(!host_base.exists());
        finalize(&sp).expect("finalize");

        assert_eq!(
            std::fs::read_to_string("/secret.txt").expect("masked file"),
            ""
        );
        assert!(names(Path::new("/secretdir")).is_empty());
        assert!(
            names(Path::new("/etc/conf")).is_empty(),
            "masked through an in-root symlink"
        );
        // /proc/kcore does not exist on every kernel (skipped then); timer_list and acpi do.
        assert!(std::fs::read("/proc/kcore").map_or(true, |k| k.is_empty()));
        assert_eq!(
            std::fs::read("/proc/timer_list").expect("timer_list").len(),
            0
        );
        assert_eq!(
            mount_at(Path::new("/proc/acpi"))
                .expect("acpi masked")
                .fstype,
            "tmpfs"
        );
        assert_eq!(
            std::fs::read_to_string("/rodir/file").expect("ro file"),
            "readable"
        );
        let e = std::fs::write("/rodir/new", "x").expect_err("ro path");
        assert_eq!(errno(&e), libc::EROFS);
        let e = std::fs::write("/proc/sys/kernel/hostname", "x").expect_err("ro /proc/sys");
        assert_eq!(errno(&e), libc::EROFS);
        let e = std::fs::write("/newfile", "x").expect_err("ro root");
        assert_eq!(errno(&e), libc::EROFS);
        assert_eq!(
            vfs_flags(Path::new("/dev")) & libc::ST_RDONLY,
            libc::ST_RDONLY,
            "ro /dev"
        );
        // Devices were created before /dev went read-only and still work.
        std::fs::write("/dev/null", "x").expect("write /dev/null");
        std::fs::write("/tmp/ok", "x").expect("tmpfs stays writable");
        let root = mount_at(Path::new("/")).expect("root mount");
        assert!(
            root.optional.iter().any(|o| o.starts_with("shared:")),
            "{root:?}"
        );
    });
}

#[test]
fn no_pivot_moves_the_root() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let sp = spec(serde_json::json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"}
    ]}));
    let rootfs = fx.rootfs.clone();
    let host_base = fx.base.clone();
    in_mount_ns(move || {
        let o = RootfsOptions {
            no_pivot: true,
            ..RootfsOptions::default()
        };
        prepare(&sp, &rootfs, &o, &mut || Ok(())).expect("prepare");
        pivot(&rootfs, &o).expect("move root");
        assert_eq!(std::env::current_dir().expect("cwd"), Path::new("/"));
        assert_eq!(
            std::fs::read_to_string("/marker").expect("marker"),
            "inside"
        );
        assert!(!host_base.exists());
        assert!(Path::new("/proc/self/status").exists());
        assert!(Path::new("/dev/null").exists());
        finalize(&sp).expect("finalize");
    });
}
