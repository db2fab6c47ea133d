//! Tests of the merged layer view: hostile images (symlinks to host files and devices,
//! FIFOs, loops, huge files) read nothing outside the layers and never block; overlayfs'
//! rules (whiteouts, opaque directories, cross-layer symlinks) are followed.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// `n` empty layer directories under a temp dir, top first.
fn layers(n: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
    let t = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..n).map(|i| t.path().join(format!("l{i}"))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d.join("etc")).unwrap();
    }
    (t, dirs)
}

fn read(layers: &[PathBuf], path: &str) -> Result<Option<Vec<u8>>, ViewError> {
    LayerView::open(layers).unwrap().read(path, 1 << 20)
}

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root (mknod, trusted.* xattrs)");
        false
    }
}

#[test]
fn view_reads_regular_files_through_in_image_symlinks_across_layers() {
    let (_t, l) = layers(2);
    // /etc/passwd (top) -> ../usr/lib/passwd (bottom), through a relative symlink and an
    // absolute one.
    std::fs::create_dir_all(l[1].join("usr/lib")).unwrap();
    std::fs::write(l[1].join("usr/lib/passwd"), "alice:x:1:1::/:/bin/sh\n").unwrap();
    symlink("../usr/lib/passwd", l[0].join("etc/passwd")).unwrap();
    symlink("/usr/./lib//passwd", l[0].join("etc/group")).unwrap();
    assert_eq!(
        read(&l, "/etc/passwd").unwrap().unwrap(),
        b"alice:x:1:1::/:/bin/sh\n"
    );
    assert_eq!(
        read(&l, "etc/group").unwrap().unwrap(),
        b"alice:x:1:1::/:/bin/sh\n"
    );
    // A lower layer's file shows through a directory present in both.
    std::fs::write(l[1].join("etc/hosts"), "lower").unwrap();
    assert_eq!(read(&l, "/etc/hosts").unwrap().unwrap(), b"lower");
    // The top layer's file wins.
    std::fs::write(l[0].join("etc/hosts"), "upper").unwrap();
    assert_eq!(read(&l, "/etc/hosts").unwrap().unwrap(), b"upper");
    assert!(read(&l, "/etc/nothing").unwrap().is_none());
    assert!(
        read(&l, "/etc/hosts/x").unwrap().is_none(),
        "file as directory"
    );
}

#[test]
fn view_never_leaves_the_layers() {
    // A host directory with a passwd the image must not see.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(
        host.path().join("passwd"),
        "hostonly:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    let hostdir = host.path().to_str().unwrap();

    // /etc -> <host dir>: resolved inside the image, where that path does not exist.
    let (_t, l) = layers(1);
    std::fs::remove_dir(l[0].join("etc")).unwrap();
    symlink(hostdir, l[0].join("etc")).unwrap();
    assert!(read(&l, "/etc/passwd").unwrap().is_none());

    // `..` beyond the top stays at the top.
    let (_t, l) = layers(1);
    let up = format!("../../../../../../..{hostdir}/passwd");
    symlink(&up, l[0].join("etc/passwd")).unwrap();
    assert!(read(&l, "/etc/passwd").unwrap().is_none());
    assert!(read(&l, &format!("/../..{hostdir}/passwd"))
        .unwrap()
        .is_none());
    // ... and finds the image's own file at that path.
    let inside = l[0].join(hostdir.trim_start_matches('/'));
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(inside.join("passwd"), "inimage").unwrap();
    assert_eq!(read(&l, "/etc/passwd").unwrap().unwrap(), b"inimage");

    // /etc/passwd -> /dev/zero: the image has no /dev/zero, so nothing is read (before,
    // crustd read the host's /dev/zero until the kernel killed it).
    let (_t, l) = layers(1);
    symlink("/dev/zero", l[0].join("etc/passwd")).unwrap();
    assert!(read(&l, "/etc/passwd").unwrap().is_none());
}

#[test]
fn view_refuses_what_is_not_a_regular_file_without_blocking() {
    let (_t, l) = layers(1);
    // A FIFO nobody writes to: opening or reading it would block forever.
    nix::unistd::mkfifo(
        &l[0].join("etc/passwd"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let t0 = Instant::now();
    let e = read(&l, "/etc/passwd").unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&e, ViewError::NotRegular { kind: "FIFO", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("/etc/passwd"), "{e}");
    // A symlink to the FIFO, too.
    symlink("passwd", l[0].join("etc/group")).unwrap();
    assert!(matches!(
        read(&l, "/etc/group").unwrap_err(),
        ViewError::NotRegular { kind: "FIFO", .. }
    ));
    // A directory.
    std::fs::create_dir(l[0].join("etc/shadow")).unwrap();
    assert!(matches!(
        read(&l, "/etc/shadow").unwrap_err(),
        ViewError::NotRegular {
            kind: "directory",
            ..
        }
    ));
    // A socket.
    let _sock = std::os::unix::net::UnixListener::bind(l[0].join("etc/sock")).unwrap();
    assert!(matches!(
        read(&l, "/etc/sock").unwrap_err(),
        ViewError::NotRegular { kind: "socket", .. }
    ));
}

#[test]
fn view_devices_in_the_image_are_not_opened() {
    if !is_root() {
        return;
    }
    let (_t, l) = layers(1);
    // The image's own /dev/zero (char 1:5) and /etc/passwd pointing at it.
    std::fs::create_dir(l[0].join("dev")).unwrap();
    nix::sys::stat::mknod(
        &l[0].join("dev/zero"),
        SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 5),
    )
    .unwrap();
    symlink("/dev/zero", l[0].join("etc/passwd")).unwrap();
    assert!(matches!(
        read(&l, "/etc/passwd").unwrap_err(),
        ViewError::NotRegular {
            kind: "character device",
            ..
        }
    ));
}

#[test]
fn view_caps_the_size_and_symlink_loops() {
    let (_t, l) = layers(1);
    std::fs::write(l[0].join("etc/passwd"), vec![b'x'; 1001]).unwrap();
    let v = LayerView::open(&l).unwrap();
    assert!(matches!(
        v.read("/etc/passwd", 1000).unwrap_err(),
        ViewError::TooLarge { cap: 1000, .. }
    ));
    assert_eq!(v.read("/etc/passwd", 1001).unwrap().unwrap().len(), 1001);
    symlink("b", l[0].join("etc/a")).unwrap();
    symlink("a", l[0].join("etc/b")).unwrap();
    assert!(matches!(
        v.read("/etc/a", 1000).unwrap_err(),
        ViewError::SymlinkLoop { .. }
    ));
}

/// A 0:0 character device: overlayfs' whiteout.
fn whiteout(p: &Path) {
    nix::sys::stat::mknod(
        p,
        SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        nix::sys::stat::makedev(0, 0),
    )
    .unwrap();
}

#[test]
fn view_follows_whiteouts_and_opaque_directories() {
    if !is_root() {
        return;
    }
    let (_t, l) = layers(3);
    std::fs::write(l[2].join("etc/passwd"), "bottom").unwrap();
    std::fs::write(l[2].join("etc/group"), "bottom").unwrap();
    // Middle layer deletes /etc/passwd; top layer adds nothing.
    whiteout(&l[1].join("etc/passwd"));
    assert!(read(&l, "/etc/passwd").unwrap().is_none());
    assert_eq!(read(&l, "/etc/group").unwrap().unwrap(), b"bottom");
    // An opaque /etc in the middle hides the bottom's /etc entirely.
    let set = |d: &Path| {
        let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: both strings are NUL-terminated and the value outlives the call.
        let r = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        r == 0
    };
    if !set(&l[1].join("etc")) {
        eprintln!("skipped opaque part: no trusted.* xattrs on this filesystem");
        return;
    }
    assert!(read(&l, "/etc/group").unwrap().is_none());
    std::fs::write(l[1].join("etc/group"), "middle").unwrap();
    assert_eq!(read(&l, "/etc/group").unwrap().unwrap(), b"middle");
    // A file in a higher layer hides a lower directory of the same name.
    std::fs::create_dir_all(l[2].join("opt/d")).unwrap();
    std::fs::write(l[2].join("opt/d/f"), "x").unwrap();
    std::fs::create_dir_all(l[0].join("opt")).unwrap();
    std::fs::write(l[0].join("opt/d"), "file").unwrap();
    assert!(read(&l, "/opt/d/f").unwrap().is_none());
}
