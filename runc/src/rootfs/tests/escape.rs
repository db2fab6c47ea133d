//! Escape attempts through mount destinations and device paths (root only): every one
//! either lands inside the root or fails, and the host stays untouched. Each case runs
//! with the kernel resolver (openat2) and with the userspace walk.

use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::{Path, PathBuf};

use super::super::resolve::Resolver;
use super::super::{prepare_with, RootfsError, RootfsOptions};
use super::{fixture, in_mount_ns, is_root, mount_at, names, spec, Fixture};

const BOTH: [Resolver; 2] = [Resolver::Kernel, Resolver::Walk];

/// The host path `p` as seen inside the rootfs (an absolute host path joined to the root).
fn inside(fx: &Fixture, p: &Path) -> PathBuf {
    fx.rootfs.join(p.strip_prefix("/").unwrap_or(p))
}

fn evil_rootfs(fx: &Fixture) {
    let r = &fx.rootfs;
    symlink("/etc", r.join("evil_abs")).expect("symlink");
    symlink("../../../../../../../../../etc", r.join("evil_rel")).expect("symlink");
    symlink(&fx.outside, r.join("linkdir")).expect("symlink");
    symlink("chain2", r.join("chain1")).expect("symlink");
    symlink(format!("/../..{}", fx.outside.display()), r.join("chain2")).expect("symlink");
    symlink("loop2", r.join("loop1")).expect("symlink");
    symlink("loop1", r.join("loop2")).expect("symlink");
    symlink("/etc/hostname", r.join("hostfile_link")).expect("symlink");
}

#[test]
fn symlinked_destinations_stay_inside_the_root() {
    if !is_root() {
        return;
    }
    let host_etc_before = names(Path::new("/etc"));
    let host_hostname = std::fs::read("/etc/hostname").ok();
    for res in BOTH {
        let fx = fixture();
        evil_rootfs(&fx);
        let src_file = fx.base.join("srcfile");
        std::fs::write(&src_file, "bound").expect("write");
        let sp = spec(serde_json::json!({
            "mounts": [
                {"destination": "/evil_abs", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/evil_rel/sub", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/linkdir/x", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/chain1/y", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/../../../outside_rel/z", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/hostfile_link", "type": "bind", "source": src_file, "options": ["bind"]}
            ],
            "linux": {"namespaces": [{"type": "mount"}],
                      "devices": [{"path": "/evil_abs/../evil_rel/mydev", "type": "c", "major": 1, "minor": 3}]}
        }));
        let r = fx.rootfs.clone();
        let outside_in_root = inside(&fx, &fx.outside);
        in_mount_ns(move || {
            prepare_with(&sp, &r, &RootfsOptions::default(), res).expect("prepare");
            // /evil_abs -> /etc resolved to <root>/etc (created inside), which got the tmpfs.
            assert_eq!(
                mount_at(&r.join("etc")).expect("etc mounted").fstype,
                "tmpfs",
                "{res:?}"
            );
            assert!(
                mount_at(Path::new("/etc")).is_none(),
                "host /etc untouched ({res:?})"
            );
            assert!(mount_at(&r.join("etc/sub")).is_some());
            assert!(mount_at(&outside_in_root.join("x")).is_some(), "{res:?}");
            assert!(mount_at(&outside_in_root.join("y")).is_some(), "{res:?}");
            assert!(mount_at(&r.join("outside_rel/z")).is_some(), "{res:?}");
            // The file bind went onto <root>/etc/hostname, never the host's.
            assert_eq!(
                std::fs::read_to_string(r.join("etc/hostname")).expect("bound"),
                "bound"
            );
            let dev = std::fs::symlink_metadata(r.join("etc/mydev")).expect("device inside");
            assert!(dev.file_type().is_char_device());
        });
        assert_eq!(
            names(&fx.outside),
            vec!["marker"],
            "host dir untouched ({res:?})"
        );
    }
    assert_eq!(names(Path::new("/etc")), host_etc_before);
    assert_eq!(std::fs::read("/etc/hostname").ok(), host_hostname);
    assert!(!Path::new("/etc/mydev").exists() && !Path::new("/etc/sub").exists());
}

#[test]
fn proc_through_a_symlink_and_loops_fail_closed() {
    if !is_root() {
        return;
    }
    for res in BOTH {
        let fx = fixture();
        evil_rootfs(&fx);
        std::fs::create_dir_all(fx.rootfs.join("realproc")).expect("mkdir");
        symlink("realproc", fx.rootfs.join("proclink")).expect("symlink");
        let cases = [
            (
                serde_json::json!({"destination": "/proclink", "type": "proc", "source": "proc"}),
                "symlink",
            ),
            (
                serde_json::json!({"destination": "/evil_abs", "type": "sysfs", "source": "sysfs"}),
                "symlink",
            ),
            (
                serde_json::json!({"destination": "/loop1/x", "type": "tmpfs", "source": "tmpfs"}),
                "loop",
            ),
        ];
        for (m, what) in cases {
            let sp = spec(serde_json::json!({"mounts": [m]}));
            let r = fx.rootfs.clone();
            let (err, mounted) = in_mount_ns(move || {
                let before = super::super::mountinfo::read_self()
                    .expect("mountinfo")
                    .len();
                let err = prepare_with(&sp, &r, &RootfsOptions::default(), res).expect_err(what);
                let now = super::super::mountinfo::read_self().expect("mountinfo");
                // Only the rootfs self-bind (and nothing for the refused entry) was added.
                let extra: Vec<_> = now
                    .iter()
                    .skip(before)
                    .filter(|m| m.mount_point != r)
                    .map(|m| m.mount_point.clone())
                    .collect();
                (err, extra)
            });
            match what {
                "loop" => assert!(
                    matches!(&err, RootfsError::MountDestination { source, .. } if source.raw_os_error() == Some(libc::ELOOP)),
                    "{err:?} ({res:?})"
                ),
                _ => assert!(
                    matches!(err, RootfsError::InvalidMount { .. }),
                    "{err:?} ({res:?})"
                ),
            }
            assert!(mounted.is_empty(), "{what}: {mounted:?}");
        }
        assert!(!fx.rootfs.join("realproc/self").exists());
    }
}
