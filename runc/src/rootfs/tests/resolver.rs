//! The in-root resolver on its own (no root needed): both the kernel (openat2) and the
//! userspace walk must land on the same object for every escape attempt.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use super::super::resolve::{self, NodeKind, Resolver};
use super::{errno, fixture};

const BOTH: [Resolver; 2] = [Resolver::Kernel, Resolver::Walk];

fn ino(fd: &OwnedFd) -> (u64, u64) {
    let m = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("stat fd");
    (m.dev(), m.ino())
}

fn ino_path(p: &Path) -> (u64, u64) {
    let m = std::fs::metadata(p).expect("stat path");
    (m.dev(), m.ino())
}

#[test]
fn symlinks_and_dotdot_stay_inside_the_root() {
    let fx = fixture();
    let r = &fx.rootfs;
    std::fs::create_dir_all(r.join("etc/sub")).expect("mkdir");
    std::fs::write(r.join("etc/passwd"), "inside").expect("write");
    symlink("/etc", r.join("abs")).expect("symlink");
    symlink("../../../../../../../../etc", r.join("rel")).expect("symlink");
    symlink("chain2", r.join("chain1")).expect("symlink");
    symlink("/../../abs/sub", r.join("chain2")).expect("symlink");
    symlink(&fx.outside, r.join("out")).expect("symlink");
    symlink("loop2", r.join("loop1")).expect("symlink");
    symlink("loop1", r.join("loop2")).expect("symlink");
    symlink("/nonexistent", r.join("dangling")).expect("symlink");
    let root = resolve::open_dir_path(r).expect("root");
    for res in BOTH {
        let open = |p: &str| resolve::open_in(root.as_raw_fd(), Path::new(p), libc::O_PATH, res);
        let want_etc = ino_path(&r.join("etc"));
        for p in [
            "/abs",
            "rel",
            "/../../abs",
            "/etc/sub/../../../etc",
            "abs/sub/..",
            "/rel/.",
        ] {
            assert_eq!(ino(&open(p).expect(p)), want_etc, "{p} via {res:?}");
        }
        assert_eq!(
            ino(&open("/abs/passwd").expect("passwd")),
            ino_path(&r.join("etc/passwd")),
            "{res:?}"
        );
        assert_eq!(
            ino(&open("/chain1").expect("chain")),
            ino_path(&r.join("etc/sub"))
        );
        assert_eq!(ino(&open("/..").expect("..")), ino_path(r));
        // A link to a host directory is looked up inside the root, where it is missing.
        assert_eq!(
            errno(&open("/out/marker").expect_err("out")),
            libc::ENOENT,
            "{res:?}"
        );
        assert_eq!(
            errno(&open("/loop1").expect_err("loop")),
            libc::ELOOP,
            "{res:?}"
        );
        assert_eq!(
            errno(&open("/dangling").expect_err("dangling")),
            libc::ENOENT
        );
        // O_NOFOLLOW on the last component does not follow it.
        let l = resolve::open_in(
            root.as_raw_fd(),
            Path::new("/abs"),
            libc::O_PATH | libc::O_NOFOLLOW,
            res,
        )
        .expect("nofollow");
        assert_eq!(
            resolve::file_type(l.as_raw_fd()).expect("type"),
            libc::S_IFLNK
        );
    }
}

#[test]
fn creation_never_leaves_the_root() {
    let fx = fixture();
    let r = &fx.rootfs;
    symlink(&fx.outside, r.join("out")).expect("symlink");
    symlink("../../../../../../..", r.join("up")).expect("symlink");
    symlink(fx.outside.join("newfile"), r.join("filelink")).expect("symlink");
    let root = resolve::open_dir_path(r).expect("root");
    for (i, res) in BOTH.into_iter().enumerate() {
        let d = format!("/out/d{i}/e");
        resolve::ensure_in(root.as_raw_fd(), Path::new(&d), NodeKind::Dir, res).expect("dir");
        let inside = r
            .join(fx.outside.strip_prefix("/").expect("abs"))
            .join(format!("d{i}/e"));
        assert!(inside.is_dir(), "{inside:?} via {res:?}");
        let f = format!("/up/up/f{i}");
        resolve::ensure_in(root.as_raw_fd(), Path::new(&f), NodeKind::File, res).expect("file");
        assert!(r.join(format!("f{i}")).is_file());
        resolve::ensure_in(
            root.as_raw_fd(),
            Path::new("/filelink"),
            NodeKind::File,
            res,
        )
        .expect("link");
    }
    // The file behind the symlinked name was created inside the root, not on the host.
    assert!(r
        .join(fx.outside.strip_prefix("/").expect("abs"))
        .join("newfile")
        .is_file());
    assert_eq!(super::names(&fx.outside), vec!["marker"]);
}

#[test]
fn public_open_in_root() {
    let fx = fixture();
    symlink("/marker", fx.rootfs.join("m")).expect("symlink");
    let fd = super::super::open_in_root(&fx.rootfs, Path::new("/m"), libc::O_RDONLY).expect("open");
    let text = std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("read");
    assert_eq!(text, "inside");
    let err = super::super::open_in_root(&fx.rootfs, Path::new("/nope"), libc::O_RDONLY)
        .expect_err("missing");
    assert!(err.to_string().contains("/nope"), "{err}");
}
