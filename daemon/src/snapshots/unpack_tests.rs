//! Tests of safe layer application, including hostile tarballs (CVE-2021-32760 class).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::*;

/// Appends an entry with a raw (unvalidated) name and link name.
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn good_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_500_000_000);
    h.set_size(0);
    b.append_data(&mut h, "dir/", io::empty()).unwrap();
    let data = b"hello";
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o4755);
    h.set_uid(7);
    h.set_gid(8);
    h.set_mtime(1_400_000_000);
    h.set_size(data.len() as u64);
    b.append_pax_extensions([("SCHILY.xattr.user.crust", b"v1".as_slice())])
        .unwrap();
    b.append_data(&mut h, "dir/file", &data[..]).unwrap();
    raw(&mut b, "./dir/link", tar::EntryType::Symlink, "file", b"");
    raw(&mut b, "dir/hard", tar::EntryType::Link, "dir/file", b"");
    raw(&mut b, "deep/er/x", tar::EntryType::Regular, "", b"x");
    raw(&mut b, "fifo", tar::EntryType::Fifo, "", b"");
    raw(&mut b, "gone/.wh.old", tar::EntryType::Regular, "", b"");
    raw(&mut b, "opq/.wh..wh..opq", tar::EntryType::Regular, "", b"");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_mode(0o666);
    h.set_size(0);
    b.append_data(&mut h, "null", io::empty()).unwrap();
    b.into_inner().unwrap()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn applies_all_entry_kinds() {
    if !is_root() {
        eprintln!("skipped: needs root (chown, mknod, trusted.* xattrs)");
        return;
    }
    let tarball = good_tar();
    let want = Digest::of(&tarball);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tarball).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tarball[..], 1).unwrap();
    for input in [tarball.clone(), gz, zst] {
        let dir = tempfile::tempdir().unwrap();
        let a = apply_to_dir(dir.path(), &input[..]).unwrap();
        assert_eq!(a.diff_id, want);
        assert_eq!(a.size, tarball.len() as u64);
        let d = dir.path();
        let md = std::fs::metadata(d.join("dir")).unwrap();
        assert_eq!(
            (md.mode() & 0o7777, md.uid(), md.gid()),
            (0o750, 1000, 1001)
        );
        assert_eq!(md.mtime(), 1_500_000_000);
        let f = std::fs::metadata(d.join("dir/file")).unwrap();
        assert_eq!(
            (f.mode() & 0o7777, f.uid(), f.gid(), f.mtime()),
            (0o4755, 7, 8, 1_400_000_000)
        );
        assert_eq!(f.nlink(), 2);
        assert_eq!(
            std::fs::metadata(d.join("dir/hard")).unwrap().ino(),
            f.ino()
        );
        assert_eq!(
            std::fs::read_link(d.join("dir/link")).unwrap(),
            Path::new("file")
        );
        assert_eq!(std::fs::read(d.join("deep/er/x")).unwrap(), b"x");
        assert!(std::fs::metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let wh = std::fs::symlink_metadata(d.join("gone/old")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!d.join("gone/.wh.old").exists());
        let null = std::fs::metadata(d.join("null")).unwrap();
        assert_eq!(
            (null.rdev(), null.permissions().mode() & 0o777),
            (nix::sys::stat::makedev(1, 3), 0o666)
        );
        let mut buf = [0u8; 8];
        let get = |p: &Path, k: &std::ffi::CStr, buf: &mut [u8]| {
            let p = CString::new(p.as_os_str().as_bytes()).unwrap();
            // SAFETY: valid C strings and buffer.
            unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
        };
        assert_eq!(get(&d.join("opq"), c"trusted.overlay.opaque", &mut buf), 1);
        assert_eq!(buf[0], b'y');
        let n = get(&d.join("dir/file"), c"user.crust", &mut buf);
        if n >= 0 {
            assert_eq!(&buf[..n as usize], b"v1");
        }
    }
}

/// Each hostile tarball must fail with InvalidArgument and leave `outside` untouched.
#[test]
fn hostile_tarballs_never_escape() {
    type Build = fn(&mut tar::Builder<Vec<u8>>, &str);
    let cases: Vec<(&str, Build)> = vec![
        ("dotdot", |b, _| {
            raw(b, "../escaped", tar::EntryType::Regular, "", b"pwn")
        }),
        ("nested dotdot", |b, _| {
            raw(b, "a/../../escaped", tar::EntryType::Regular, "", b"pwn")
        }),
        ("absolute", |b, o| {
            raw(
                b,
                &format!("{o}/escaped"),
                tar::EntryType::Regular,
                "",
                b"pwn",
            )
        }),
        ("symlinked parent", |b, o| {
            raw(b, "evil", tar::EntryType::Symlink, o, b"");
            raw(b, "evil/escaped", tar::EntryType::Regular, "", b"pwn");
        }),
        ("relative symlinked parent", |b, _| {
            raw(b, "evil", tar::EntryType::Symlink, "../outside", b"");
            raw(b, "evil/escaped", tar::EntryType::Regular, "", b"pwn");
        }),
        ("symlink chain", |b, _| {
            raw(b, "l1", tar::EntryType::Symlink, "l2", b"");
            raw(b, "l2", tar::EntryType::Symlink, "l3", b"");
            raw(b, "l3", tar::EntryType::Symlink, "../outside", b"");
            raw(b, "l1/escaped", tar::EntryType::Regular, "", b"pwn");
        }),
        ("symlink dir then mkdir below", |b, o| {
            raw(b, "d", tar::EntryType::Symlink, o, b"");
            raw(b, "d/sub/escaped", tar::EntryType::Directory, "", b"");
        }),
        ("hardlink dotdot", |b, _| {
            raw(b, "h", tar::EntryType::Link, "../outside/secret", b"")
        }),
        ("hardlink absolute", |b, o| {
            raw(b, "h", tar::EntryType::Link, &format!("{o}/secret"), b"")
        }),
        ("hardlink through symlink", |b, o| {
            raw(b, "s", tar::EntryType::Symlink, o, b"");
            raw(b, "h", tar::EntryType::Link, "s/secret", b"");
        }),
        ("whiteout through symlink", |b, o| {
            raw(b, "s", tar::EntryType::Symlink, o, b"");
            raw(b, "s/.wh.secret", tar::EntryType::Regular, "", b"");
        }),
        ("opaque through symlink", |b, o| {
            raw(b, "s", tar::EntryType::Symlink, o, b"");
            raw(b, "s/.wh..wh..opq", tar::EntryType::Regular, "", b"");
        }),
    ];
    for (name, build) in cases {
        let top = tempfile::tempdir().unwrap();
        let outside = top.path().join("outside");
        let snap = top.path().join("snap");
        std::fs::create_dir(&outside).unwrap();
        std::fs::create_dir(&snap).unwrap();
        std::fs::write(outside.join("secret"), b"keep").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b, outside.to_str().unwrap());
        let tarball = b.into_inner().unwrap();
        let err = apply_to_dir(&snap, &tarball[..]).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{name}: {err}");
        assert!(
            !matches!(err, Error::Read(_)),
            "{name}: failed for the wrong reason: {err:?}"
        );
        eprintln!("{name}: {err}");
        let mut left: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, vec![std::ffi::OsString::from("secret")], "{name}");
        assert_eq!(
            std::fs::read(outside.join("secret")).unwrap(),
            b"keep",
            "{name}"
        );
        assert!(!top.path().join("escaped").exists(), "{name}");
        let snap_secret = std::fs::metadata(outside.join("secret")).unwrap();
        assert_eq!(
            snap_secret.nlink(),
            1,
            "{name}: hardlink made to outside file"
        );
    }
}

#[test]
fn target_dir_from_mounts() {
    let bind = Mount {
        kind: "bind".into(),
        source: "/x/fs".into(),
        options: vec!["rbind".into()],
    };
    assert_eq!(target_dir(&[bind]).unwrap(), PathBuf::from("/x/fs"));
    let ov = Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec!["upperdir=/u".into(), "lowerdir=/a:/b".into()],
    };
    assert_eq!(target_dir(&[ov]).unwrap(), PathBuf::from("/u"));
    assert!(target_dir(&[]).is_err());
}

/// Files get the owner the tar says, whether or not it is the one creation gives them
/// (ours, or the group of a setgid parent).
#[test]
fn ownership_is_exact_in_and_outside_setgid_dirs() {
    if !is_root() {
        eprintln!("skipped: needs root (chown)");
        return;
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = |name: &str, mode: u32, gid: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(gid);
        h.set_mtime(1_500_000_000);
        h.set_size(0);
        b.append_data(&mut h, name, io::empty()).unwrap();
    };
    dir("sg/", 0o2775, 1234);
    dir("plain/", 0o755, 0);
    let mut file = |name: &str, uid: u64, gid: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(1_400_000_000);
        h.set_size(1);
        b.append_data(&mut h, name, &b"x"[..]).unwrap();
    };
    file("sg/root", 0, 0);
    file("sg/inherit", 0, 1234);
    file("plain/root", 0, 0);
    file("plain/other", 5, 6);
    file("top", 0, 0);
    let tarball = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    apply_to_dir(dir.path(), &tarball[..]).unwrap();
    let owner = |p: &str| {
        let m = std::fs::symlink_metadata(dir.path().join(p)).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner("sg"), (0, 1234, 0o2775));
    assert_eq!(owner("sg/root"), (0, 0, 0o644));
    assert_eq!(owner("sg/inherit"), (0, 1234, 0o644));
    assert_eq!(owner("plain/root"), (0, 0, 0o644));
    assert_eq!(owner("plain/other"), (5, 6, 0o644));
    assert_eq!(owner("top"), (0, 0, 0o644));
}

/// Unmounts (lazily, so the auto-clearing loop device goes too) on drop, even on failure.
struct LoopMount(PathBuf);

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// On a `grpid` mount a new file gets its directory's group without any setgid bit: the
/// unpack must notice (it reads the created file's owner back) and still give every file
/// the tar's group, in a plain and in a setgid directory.
#[test]
fn ownership_is_exact_on_a_grpid_mount() {
    if !is_root() {
        eprintln!("skipped: needs root (mount, chown)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("fs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let st = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-O", "^has_journal"])
        .arg(&img)
        .status()
        .expect("run mkfs.ext4 (e2fsprogs)");
    assert!(st.success(), "mkfs.ext4 failed");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-o", "loop,grpid"])
        .arg(&img)
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount -o loop,grpid failed");
    let _guard = LoopMount(mnt.clone());
    // The snapshot root is not setgid, but its group is not ours.
    std::os::unix::fs::chown(&mnt, Some(0), Some(4321)).unwrap();

    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, mode: u32, gid: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(gid);
        h.set_mtime(1_400_000_000);
        let data: &[u8] = if kind == tar::EntryType::Regular {
            b"x"
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("top", tar::EntryType::Regular, 0o644, 0);
    add("inherit", tar::EntryType::Regular, 0o644, 4321);
    add("sg/", tar::EntryType::Directory, 0o2775, 99);
    add("sg/root", tar::EntryType::Regular, 0o644, 0);
    add("plain/", tar::EntryType::Directory, 0o755, 7);
    add("plain/root", tar::EntryType::Regular, 0o644, 0);
    let tarball = b.into_inner().unwrap();
    apply_to_dir(&mnt, &tarball[..]).unwrap();
    let owner = |p: &str| {
        let m = std::fs::symlink_metadata(mnt.join(p)).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner("top"), (0, 0, 0o644));
    assert_eq!(owner("inherit"), (0, 4321, 0o644));
    assert_eq!(owner("sg"), (0, 99, 0o2775));
    assert_eq!(owner("sg/root"), (0, 0, 0o644));
    assert_eq!(owner("plain/root"), (0, 0, 0o644));
}

/// What umoci writes (issue 13): an entry named `/` (the root: skipped) and no
/// end-of-archive blocks. `/..` and `/x` stay refused.
#[test]
fn root_entry_and_missing_end_of_archive_are_accepted() {
    let top = tempfile::tempdir().unwrap();
    let snap = top.path().join("snap");
    std::fs::create_dir(&snap).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, "/", tar::EntryType::Directory, "", b"");
    raw(&mut b, "./", tar::EntryType::Directory, "", b"");
    raw(&mut b, "f", tar::EntryType::Regular, "", b"hello");
    let mut t = b.into_inner().unwrap();
    assert!(t[t.len() - 1024..].iter().all(|b| *b == 0));
    t.truncate(t.len() - 1024);
    for (name, tarball) in [
        ("plain", t.clone()),
        ("gzip", {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&t).unwrap();
            e.finish().unwrap()
        }),
    ] {
        let _ = std::fs::remove_file(snap.join("f"));
        let applied = apply_to_dir(&snap, &tarball[..]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(std::fs::read(snap.join("f")).unwrap(), b"hello", "{name}");
        assert_eq!(applied.size, t.len() as u64, "{name}");
    }
    for bad in ["/..", "/x", "/./../x"] {
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, bad, tar::EntryType::Directory, "", b"");
        let t = b.into_inner().unwrap();
        let e = apply_to_dir(&snap, &t[..]).unwrap_err();
        assert!(matches!(e, Error::Escape(_)), "{bad}: {e:?}");
    }
}

/// Whiteouts of `..`, `.`, or nothing (`.wh...`, `.wh..`, `.wh.`) are refused and remove
/// nothing: neither the snapshot being built, nor its parent, nor a sibling snapshot.
#[test]
fn whiteout_names_are_checked() {
    for (case, entry) in [
        ("dotdot at the root", ".wh..."),
        ("dotdot below", "sub/.wh..."),
        ("dot at the root", ".wh.."),
        ("dot below", "sub/.wh.."),
        ("empty", "sub/.wh."),
    ] {
        let top = tempfile::tempdir().unwrap();
        let snaps = top.path().join("snapshots");
        let snap = snaps.join("1/fs");
        let sibling = snaps.join("2/fs");
        std::fs::create_dir_all(snap.join("sub")).unwrap();
        std::fs::create_dir_all(&sibling).unwrap();
        std::fs::write(snap.join("sub/mine"), b"keep").unwrap();
        std::fs::write(snaps.join("1/keep"), b"keep").unwrap();
        std::fs::write(sibling.join("keep"), b"keep").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, entry, tar::EntryType::Regular, "", b"");
        let tarball = b.into_inner().unwrap();
        let err = apply_to_dir(&snap, &tarball[..]).expect_err(case);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{case}: {err}");
        for kept in [
            snap.join("sub/mine"),
            snaps.join("1/keep"),
            sibling.join("keep"),
        ] {
            assert_eq!(
                std::fs::read(&kept).ok().as_deref(),
                Some(&b"keep"[..]),
                "{case}: {} removed",
                kept.display()
            );
        }
    }
}

/// A GNU sparse entry of one 512-byte block declaring a 2 GiB file: the file has the declared
/// length and content, but its zeros are holes (written out, a layer of a few bytes could
/// declare terabytes and fill the disk).
#[test]
fn a_sparse_entry_declaring_gigabytes_takes_no_disk() {
    const REAL: u64 = 2 << 30;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_path("sparse").unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(512);
    {
        let g = h.as_gnu_mut().unwrap();
        let octal = |dst: &mut [u8], v: u64| {
            let s = format!("{:0w$o}", v, w = dst.len() - 1);
            dst[..s.len()].copy_from_slice(s.as_bytes());
        };
        octal(&mut g.sparse[0].offset, REAL - 512);
        octal(&mut g.sparse[0].numbytes, 512);
        octal(&mut g.realsize, REAL);
    }
    h.set_cksum();
    let mut tarball = h.as_bytes().to_vec();
    tarball.extend_from_slice(&[b'x'; 512]);
    tarball.extend_from_slice(&[0u8; 1024]);
    let d = tempfile::tempdir().unwrap();
    apply_to_dir(d.path(), &tarball[..]).unwrap();
    let m = std::fs::metadata(d.path().join("sparse")).unwrap();
    assert_eq!(m.len(), REAL);
    assert!(
        m.blocks() * 512 < 16 << 20,
        "{} bytes on disk for a file of 512 bytes of data",
        m.blocks() * 512
    );
    let mut f = std::fs::File::open(d.path().join("sparse")).unwrap();
    use std::io::{Read as _, Seek as _};
    f.seek(std::io::SeekFrom::Start(REAL - 513)).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    assert_eq!(tail.len(), 513);
    assert_eq!(tail[0], 0);
    assert!(tail[1..].iter().all(|b| *b == b'x'));
}
