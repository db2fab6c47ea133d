//! Every mount kind, its options and propagation, devices and the console (root only).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::super::resolve::Resolver;
use super::super::{mount_console, prepare, prepare_with, RootfsError, RootfsOptions};
use super::{errno, fixture, in_mount_ns, is_root, mount_at, names, spec, vfs_flags, vfs_size};

fn opts() -> RootfsOptions {
    RootfsOptions::default()
}

#[test]
fn every_mount_kind_with_options() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    std::fs::create_dir_all(fx.outside.join("data")).expect("mkdir");
    std::fs::write(fx.outside.join("data/file"), "data").expect("write");
    std::fs::write(fx.outside.join("hostname"), "crust-test\n").expect("write");
    let sp = spec(serde_json::json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700"]},
        {"destination": "/data", "type": "bind", "source": fx.outside.join("data"),
         "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]},
        {"destination": "/etc/hostname", "type": "bind", "source": fx.outside.join("hostname"),
         "options": ["bind", "ro"]}
    ]}));
    let r = fx.rootfs.clone();
    let outside = fx.outside.clone();
    in_mount_ns(move || {
        prepare(&sp, &r, &opts(), &mut || Ok(())).expect("prepare");
        let kind = |p: &str| mount_at(&r.join(p)).map(|m| m.fstype).unwrap_or_default();
        assert_eq!(kind("proc"), "proc");
        assert!(r.join("proc/self/status").exists());
        assert_eq!(kind("dev"), "tmpfs");
        assert_eq!(vfs_size(&r.join("dev")), 65536 * 1024);
        assert_eq!(
            std::fs::metadata(r.join("dev")).expect("dev").mode() & 0o7777,
            0o755
        );
        assert_eq!(kind("dev/pts"), "devpts");
        assert!(r.join("dev/pts/ptmx").exists());
        assert_eq!(kind("dev/shm"), "tmpfs");
        assert_eq!(
            std::fs::metadata(r.join("dev/shm")).expect("shm").mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            vfs_flags(&r.join("dev/shm")) & libc::ST_NODEV,
            libc::ST_NODEV
        );
        assert_eq!(kind("dev/mqueue"), "mqueue");
        assert_eq!(kind("sys"), "sysfs");
        assert_eq!(vfs_flags(&r.join("sys")) & libc::ST_RDONLY, libc::ST_RDONLY);
        assert_eq!(kind("run"), "tmpfs");
        assert_eq!(vfs_size(&r.join("run")), 1024 * 1024);
        assert_eq!(
            std::fs::metadata(r.join("run")).expect("run").mode() & 0o7777,
            0o700
        );

        // cgroup: v1/hybrid gives a read-only tmpfs of hierarchies, v2 a cgroup2 mount.
        let cg = r.join("sys/fs/cgroup");
        if kind("sys/fs/cgroup") == "tmpfs" {
            assert_eq!(vfs_flags(&cg) & libc::ST_RDONLY, libc::ST_RDONLY);
            let hier = names(&cg);
            assert!(hier.iter().any(|h| h == "memory"), "{hier:?}");
            assert!(cg.join("memory/memory.limit_in_bytes").exists());
            assert_eq!(kind("sys/fs/cgroup/memory"), "cgroup");
            assert_eq!(
                vfs_flags(&cg.join("memory")) & libc::ST_RDONLY,
                libc::ST_RDONLY
            );
            for h in &hier {
                if h.contains(',') {
                    for part in h.split(',') {
                        let link = std::fs::read_link(cg.join(part)).expect("comount link");
                        assert_eq!(link, Path::new(h));
                    }
                }
            }
        } else {
            assert_eq!(kind("sys/fs/cgroup"), "cgroup2");
        }

        // Bind mounts: flags applied by the remount, the file bind is a file.
        let data = r.join("data");
        let f = vfs_flags(&data);
        for flag in [
            libc::ST_RDONLY,
            libc::ST_NOSUID,
            libc::ST_NODEV,
            libc::ST_NOEXEC,
        ] {
            assert_eq!(f & flag, flag, "flag {flag:#x} on /data");
        }
        assert_eq!(
            std::fs::read_to_string(data.join("file")).expect("read"),
            "data"
        );
        let e = std::fs::write(data.join("new"), "x").expect_err("read-only");
        assert_eq!(errno(&e), libc::EROFS);
        assert_eq!(
            std::fs::read_to_string(r.join("etc/hostname")).expect("hostname"),
            "crust-test\n"
        );
        assert_eq!(
            vfs_flags(&r.join("etc/hostname")) & libc::ST_RDONLY,
            libc::ST_RDONLY
        );

        // Default devices, /dev symlinks and ptmx.
        for (name, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            let m = std::fs::symlink_metadata(r.join("dev").join(name)).expect(name);
            assert!(m.file_type().is_char_device(), "{name}");
            assert_eq!(m.rdev(), libc::makedev(major, minor), "{name}");
            assert_eq!(m.mode() & 0o777, 0o666, "{name}");
        }
        assert_eq!(
            std::fs::read_link(r.join("dev/ptmx")).expect("ptmx"),
            Path::new("pts/ptmx")
        );
        assert_eq!(
            std::fs::read_link(r.join("dev/fd")).expect("fd"),
            Path::new("/proc/self/fd")
        );
        assert_eq!(
            std::fs::read_link(r.join("dev/stderr")).expect("stderr"),
            Path::new("/proc/self/fd/2")
        );
    });
    // The host side is untouched.
    assert_eq!(names(&outside), vec!["data", "hostname", "marker"]);
    assert_eq!(names(&outside.join("data")), vec!["file"]);
}

#[test]
fn propagation_and_recursive_attributes() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    std::fs::create_dir_all(fx.outside.join("tree/sub")).expect("mkdir");
    let sp = spec(serde_json::json!({"mounts": [
        {"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]},
        {"destination": "/private", "type": "tmpfs", "source": "tmpfs", "options": ["private"]},
        {"destination": "/unbindable", "type": "tmpfs", "source": "tmpfs", "options": ["unbindable"]},
        {"destination": "/tree", "type": "bind", "source": fx.outside.join("tree"),
         "options": ["rbind", "rro", "rnosuid", "rnoatime"]}
    ], "linux": {"namespaces": [{"type": "mount"}], "rootfsPropagation": "rslave"}}));
    let r = fx.rootfs.clone();
    let tree = fx.outside.join("tree");
    in_mount_ns(move || {
        // A submount in the bind source, to see that the r* attributes are recursive.
        super::super::mount::sys_mount(
            Some("tmpfs".as_ref()),
            tree.join("sub").as_os_str(),
            Some("tmpfs"),
            0,
            None,
        )
        .expect("submount");
        prepare(&sp, &r, &opts(), &mut || Ok(())).expect("prepare");
        let opt = |p: &str| mount_at(&r.join(p)).expect(p).optional;
        assert!(
            opt("shared").iter().any(|o| o.starts_with("shared:")),
            "{:?}",
            opt("shared")
        );
        assert!(opt("private").is_empty(), "{:?}", opt("private"));
        assert!(
            opt("unbindable").iter().any(|o| o == "unbindable"),
            "{:?}",
            opt("unbindable")
        );
        for p in ["tree", "tree/sub"] {
            let f = vfs_flags(&r.join(p));
            assert_eq!(f & libc::ST_RDONLY, libc::ST_RDONLY, "{p} ro");
            assert_eq!(f & libc::ST_NOSUID, libc::ST_NOSUID, "{p} nosuid");
            assert_eq!(f & libc::ST_NOATIME, libc::ST_NOATIME, "{p} noatime");
        }
    });
}

#[test]
fn tmpcopyup_fills_the_tmpfs() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let d = fx.rootfs.join("copy");
    std::fs::create_dir_all(d.join("sub")).expect("mkdir");
    std::fs::write(d.join("sub/f"), "content").expect("write");
    std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o710)).expect("chmod");
    std::os::unix::fs::symlink("/etc/passwd", d.join("link")).expect("symlink");
    let sp = spec(serde_json::json!({"mounts": [
        {"destination": "/copy", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "ro"]}
    ]}));
    let r = fx.rootfs.clone();
    in_mount_ns(move || {
        prepare(&sp, &r, &opts(), &mut || Ok(())).expect("prepare");
        let d = r.join("copy");
        assert_eq!(mount_at(&d).expect("mounted").fstype, "tmpfs");
        assert_eq!(
            std::fs::read_to_string(d.join("sub/f")).expect("copied"),
            "content"
        );
        assert_eq!(
            std::fs::metadata(d.join("sub")).expect("sub").mode() & 0o777,
            0o710
        );
        assert_eq!(
            std::fs::read_link(d.join("link")).expect("link"),
            Path::new("/etc/passwd")
        );
        assert_eq!(vfs_flags(&d) & libc::ST_RDONLY, libc::ST_RDONLY);
    });
}

#[test]
fn spec_devices_and_user_ns_binds() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let sp = spec(serde_json::json!({"linux": {
    "namespaces": [{"type": "mount"}],
    "devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 1000, "gid": 1001},
        {"path": "/dev/loop-crust", "type": "b", "major": 7, "minor": 200},
        {"path": "/dev/fifo", "type": "p"},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 432}
    ]}}));
    let r = fx.rootfs.clone();
    in_mount_ns(move || {
        prepare(&sp, &r, &opts(), &mut || Ok(())).expect("prepare");
        let m = std::fs::symlink_metadata(r.join("dev/fuse")).expect("fuse");
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), libc::makedev(10, 229));
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o600, 1000, 1001));
        let m = std::fs::symlink_metadata(r.join("dev/loop-crust")).expect("loop");
        assert!(m.file_type().is_block_device());
        assert_eq!(m.rdev(), libc::makedev(7, 200));
        assert!(std::fs::symlink_metadata(r.join("dev/fifo"))
            .expect("fifo")
            .file_type()
            .is_fifo());
        // The spec entry replaces the default /dev/null.
        assert_eq!(
            std::fs::symlink_metadata(r.join("dev/null"))
                .expect("null")
                .mode()
                & 0o777,
            0o660
        );
    });

    // In a user namespace devices are bind mounts of the host's, and sysfs without a
    // network namespace is an rbind of the host's /sys (submounts included).
    let fx = fixture();
    let sp = spec(serde_json::json!({"mounts": [
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    ]}));
    let r = fx.rootfs.clone();
    in_mount_ns(move || {
        let o = RootfsOptions {
            in_user_ns: true,
            ..RootfsOptions::default()
        };
        prepare(&sp, &r, &o, &mut || Ok(())).expect("prepare");
        for name in ["null", "zero", "tty"] {
            let p = r.join("dev").join(name);
            assert!(mount_at(&p).is_some(), "{name} is a bind mount");
            assert!(std::fs::metadata(&p)
                .expect(name)
                .file_type()
                .is_char_device());
        }
        assert!(
            mount_at(&r.join("sys/fs/cgroup")).is_some(),
            "rbind of /sys carries submounts"
        );
        assert_eq!(vfs_flags(&r.join("sys")) & libc::ST_RDONLY, libc::ST_RDONLY);
    });
}

#[test]
fn console_is_bound_onto_dev_console() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let pty = fx.base.join("fake-pty");
    std::fs::write(&pty, "pty").expect("write");
    let r = fx.rootfs.clone();
    in_mount_ns(move || {
        mount_console(&r, &pty).expect("console");
        let c = r.join("dev/console");
        assert!(mount_at(&c).is_some());
        assert_eq!(std::fs::read_to_string(&c).expect("read"), "pty");
    });
}

#[test]
fn bad_input_is_refused_before_anything_changes() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let cases = [
        (
            serde_json::json!({"mounts": [{"destination": "/ok", "type": "tmpfs", "source": "tmpfs"},
                                       {"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}]}),
            "mounts[1]",
        ),
        (
            serde_json::json!({"mounts": [{"destination": "relative", "type": "tmpfs"}]}),
            "mounts[0]",
        ),
        (
            serde_json::json!({"mounts": [{"destination": "/b", "type": "bind", "options": ["rbind"]}]}),
            "without a source",
        ),
        (
            serde_json::json!({"mounts": [{"destination": "/t"}]}),
            "without a type",
        ),
        (
            serde_json::json!({"linux": {"devices": [{"path": "/dev/x", "type": "a"}]}}),
            "linux.devices[0]",
        ),
        (
            serde_json::json!({"linux": {"devices": [{"path": "dev/x", "type": "c", "major": 1, "minor": 3}]}}),
            "linux.devices[0]",
        ),
        (
            serde_json::json!({"linux": {"rootfsPropagation": "sideways"}}),
            "rootfsPropagation",
        ),
    ];
    for (extra, word) in cases {
        let sp = spec(extra);
        let r = fx.rootfs.clone();
        let (err, before, after) = in_mount_ns(move || {
            let before = super::super::mountinfo::read_self().expect("mountinfo");
            let err = prepare(&sp, &r, &opts(), &mut || Ok(())).expect_err("refused");
            let after = super::super::mountinfo::read_self().expect("mountinfo");
            (err, before, after)
        });
        assert!(err.to_string().contains(word), "{err} should name {word}");
        assert_eq!(before, after, "{word}: no mount may change");
    }
    assert!(
        !fx.rootfs.join("ok").exists(),
        "nothing created for a refused spec"
    );
    // A missing bind source fails naming the mount and the source.
    let sp = spec(serde_json::json!({"mounts": [
        {"destination": "/b", "type": "bind", "source": "/nonexistent/crust", "options": ["rbind"]}]}));
    let r = fx.rootfs.clone();
    let err =
        in_mount_ns(move || prepare_with(&sp, &r, &opts(), Resolver::Walk).expect_err("missing"));
    assert!(
        matches!(err, RootfsError::MountSource { index: 0, .. }),
        "{err:?}"
    );
    // A missing rootfs.
    let sp = spec(serde_json::json!({}));
    let missing = fx.base.join("no-rootfs");
    let err = in_mount_ns(move || {
        prepare(&sp, &missing, &opts(), &mut || Ok(())).expect_err("missing rootfs")
    });
    assert!(err.to_string().contains("no-rootfs"), "{err}");
}

#[test]
fn devices_fall_back_to_binds_when_mknod_is_refused() {
    if !is_root() {
        return;
    }
    let fx = fixture();
    let sp = spec(serde_json::json!({}));
    let r = fx.rootfs.clone();
    in_mount_ns(move || {
        // Capabilities are per thread: only this test thread loses CAP_MKNOD.
        caps::drop(None, caps::CapSet::Effective, caps::Capability::CAP_MKNOD)
            .expect("drop CAP_MKNOD");
        prepare(&sp, &r, &opts(), &mut || Ok(())).expect("prepare");
        let null = r.join("dev/null");
        assert!(mount_at(&null).is_some(), "bound from the host");
        assert!(std::fs::metadata(&null)
            .expect("null")
            .file_type()
            .is_char_device());
    });
}

#[test]
fn cgroup_mount_with_and_without_cgroup_namespace() {
    if !is_root() {
        return;
    }
    let v1 = std::fs::read_to_string("/proc/self/cgroup")
        .expect("cgroup")
        .lines()
        .any(|l| l.contains(":memory:"));
    for cgroupns in [false, true] {
        let fx = fixture();
        let mut namespaces = vec![serde_json::json!({"type": "mount"})];
        if cgroupns {
            namespaces.push(serde_json::json!({"type": "cgroup"}));
        }
        let sp = spec(serde_json::json!({
            "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}],
            "linux": {"namespaces": namespaces}
        }));
        let r = fx.rootfs.clone();
        in_mount_ns(move || {
            prepare(&sp, &r, &opts(), &mut || Ok(())).expect("prepare");
            let cg = r.join("sys/fs/cgroup");
            if !v1 {
                assert_eq!(mount_at(&cg).expect("cgroup2").fstype, "cgroup2");
                return;
            }
            let own = std::fs::read_to_string("/proc/thread-self/cgroup").expect("cgroup");
            let own_memory = own
                .lines()
                .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
                .expect("memory line");
            let m = mount_at(&cg.join("memory")).expect("memory hierarchy");
            assert_eq!(m.fstype, "cgroup");
            if cgroupns {
                // A fresh cgroup mount (rooted by the namespace; here the init one).
                assert_eq!(m.root, Path::new("/"));
            } else {
                // The container's own cgroup bound from the host hierarchy.
                assert_eq!(m.root, Path::new(&own_memory), "{m:?}");
            }
            assert_eq!(
                vfs_flags(&cg.join("memory")) & libc::ST_RDONLY,
                libc::ST_RDONLY
            );
        });
    }
}
