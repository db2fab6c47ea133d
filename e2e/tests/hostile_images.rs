//! Hostile images through the CRI (issue 18): layers and configs built here, pushed to a
//! loopback registry and pulled with PullImage as kubelet would, each on top of busybox:
//! traversal, absolute names, symlink and hardlink escapes, device nodes, a gzip bomb, a
//! sparse file declaring gigabytes, whiteout tricks, special files where regular ones are
//! expected. Nothing may be written, read or removed outside crustd's snapshots: a canary
//! directory beside crustd's root (and one a layer names by its absolute path) stays exactly
//! as it was, host files keep their link counts, and busybox (whose layer every image shares)
//! still runs. crustd answers Version within 2 s throughout (polled every 100 ms while the
//! pulls run).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crust_e2e::image::{self, busybox_layer, Compression, Flavour, Layer};
use crust_e2e::pods::{self, container_config, pod_config};
use crust_e2e::{cri, require_root};
use k8s_cri::v1 as kc;
use tar::EntryType as T;
use tonic::Code;

/// Every path under `dir`, with size, mode and mtime.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, u32, i64, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push((e.path(), m.len(), m.mode(), m.mtime(), m.nlink()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The size the sparse layer declares (1 GiB: its zeros still cost the tar reader CPU).
const SPARSE: u64 = 1 << 30;

/// A sparse entry (GNU) declaring `real` bytes with one block of data at the end.
fn sparse_layer(name: &str, real: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(T::GNUSparse);
    h.set_path(name).unwrap();
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
        octal(&mut g.sparse[0].offset, real - 512);
        octal(&mut g.sparse[0].numbytes, 512);
        octal(&mut g.realsize, real);
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'x'; 512]);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn device(name: &str, kind: T, major: u32, minor: u32) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_device_major(major).unwrap();
    h.set_device_minor(minor).unwrap();
    h.set_mode(0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_path(name).unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

/// Files of at least `min` bytes named `name` under `dir`: (path, length, bytes on disk).
fn find(dir: &Path, name: &str) -> Vec<(PathBuf, u64, u64)> {
    tree(dir)
        .into_iter()
        .filter(|(p, ..)| p.file_name().is_some_and(|n| n == name))
        .map(|(p, len, ..)| {
            let blocks = std::fs::symlink_metadata(&p)
                .map(|m| m.blocks() * 512)
                .unwrap_or(0);
            (p, len, blocks)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_layers_touch_nothing_outside_the_snapshots() {
    require_root!();
    let (reg, d, mut rt, busybox, logs, _g) = pods::setup().await;
    let host = reg.host();
    // The canaries: one beside crustd's root (what `..` climbs to), one at a fixed absolute
    // path (what absolute names and symlinks aim at), a host file to hardlink.
    let canary = d.dir.path().join("canary");
    std::fs::create_dir_all(canary.join("dir")).unwrap();
    std::fs::write(canary.join("file"), "canary").unwrap();
    std::fs::write(canary.join("dir/inner"), "canary").unwrap();
    let abs = tempfile::Builder::new()
        .prefix("crust-ch-canary")
        .tempdir()
        .unwrap();
    std::fs::write(abs.path().join("file"), "canary").unwrap();
    let abs_s = abs.path().display().to_string();
    let canary_before = tree(&canary);
    let abs_before = tree(abs.path());
    // Relative climbs from a snapshot dir (<root>/snapshots/<n>/fs/...) to the canary.
    let up = "../../../../../../../../../../../..";
    let rel_canary = format!("{up}{}", canary.display());

    // Responsiveness probe for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (stop, ch) = (stop.clone(), d.channel().await);
        tokio::spawn(async move {
            let mut rt = pods::Runtime::new(ch);
            let mut worst = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    rt.version(kc::VersionRequest::default()),
                )
                .await;
                assert!(matches!(r, Ok(Ok(_))), "Version: {r:?}");
                worst = worst.max(t0.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            worst
        })
    };

    // (case, layer, pull must succeed). "symlink-then-dir" succeeds: the directory entry
    // replaces the symlink, and its file lands in the snapshot (the canary says so).
    let zeros = vec![0u8; 64 << 20];
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "traversal",
            Layer::new()
                .raw(
                    &format!("{up}{}/evil", canary.display()),
                    T::Regular,
                    "",
                    b"x",
                )
                .finish(),
            false,
        ),
        (
            "dotdot-inside",
            Layer::new()
                .raw("a/../../evil", T::Regular, "", b"x")
                .finish(),
            false,
        ),
        (
            "absolute",
            Layer::new()
                .raw(&format!("{abs_s}/evil"), T::Regular, "", b"x")
                .finish(),
            false,
        ),
        (
            "symlink-abs-parent",
            Layer::new()
                .symlink("out", &abs_s)
                .raw("out/evil", T::Regular, "", b"x")
                .finish(),
            false,
        ),
        (
            "symlink-rel-parent",
            Layer::new()
                .symlink("out", &rel_canary)
                .raw("out/evil", T::Regular, "", b"x")
                .finish(),
            false,
        ),
        (
            "symlink-then-dir",
            Layer::new()
                .symlink("d", &format!("{rel_canary}/dir"))
                .raw("d/", T::Directory, "", b"")
                .raw("d/inner", T::Regular, "", b"overwritten")
                .finish(),
            true,
        ),
        (
            "hardlink-host-file",
            Layer::new()
                .raw("h", T::Link, &format!("{abs_s}/file"), b"")
                .finish(),
            false,
        ),
        (
            "hardlink-climb",
            Layer::new()
                .raw("h", T::Link, &format!("{rel_canary}/file"), b"")
                .finish(),
            false,
        ),
        (
            "hardlink-via-symlink",
            Layer::new()
                .symlink("s", &abs_s)
                .raw("h", T::Link, "s/file", b"")
                .finish(),
            false,
        ),
        (
            "whiteout-dotdot",
            Layer::new().raw(".wh...", T::Regular, "", b"").finish(),
            false,
        ),
        (
            "whiteout-through-symlink",
            Layer::new()
                .symlink("u", "..")
                .raw("u/.wh.canary", T::Regular, "", b"")
                .finish(),
            false,
        ),
        (
            "whiteout-bin",
            Layer::new()
                .raw("bin/.wh.busybox", T::Regular, "", b"")
                .finish(),
            true,
        ),
        (
            "devices",
            [
                device("dev/sda", T::Block, 8, 0),
                device("dev/mem", T::Char, 1, 1),
            ]
            .concat(),
            true,
        ),
        (
            "gzip-bomb",
            Layer::new().file("bomb", &zeros, 0o644).finish(),
            true,
        ),
        ("sparse-1g", sparse_layer("sparse", SPARSE), true),
        (
            "passwd-dir",
            Layer::new()
                .raw("etc/passwd/", T::Directory, "", b"")
                .finish(),
            true,
        ),
        ("passwd-device", device("etc/passwd", T::Char, 1, 5), true),
        (
            "passwd-to-canary",
            Layer::new()
                .symlink("etc/passwd", &format!("{rel_canary}/file"))
                .finish(),
            true,
        ),
    ];
    drop(zeros);
    let mut images = cri::Images::new(d.channel().await);
    let mut pulled = Vec::new();
    for (case, layer, ok) in cases {
        let img = image::build(
            &[busybox_layer(), layer],
            Compression::Gzip,
            Flavour::Oci,
            image::host_arch(),
            &[],
        );
        image::push(&host, "t/evil", case, &img, None).await;
        let name = format!("{host}/t/evil:{case}");
        let t0 = Instant::now();
        let r = images.pull(&name, None).await;
        eprintln!(
            "{case}: pull {:?} in {:?}",
            r.as_ref().map(|_| ()).map_err(|e| e.code()),
            t0.elapsed()
        );
        match (r, ok) {
            (Ok(_), true) => pulled.push((case, name)),
            (Err(e), false) => {
                assert_eq!(e.code(), Code::InvalidArgument, "{case}: {e:?}");
                assert!(
                    images.list(Some(&name)).await.is_empty(),
                    "{case}: a refused image is listed"
                );
            }
            (r, _) => panic!(
                "{case}: pull {:?}, expected {}",
                r.map(|_| ()),
                if ok { "success" } else { "refusal" }
            ),
        }
        assert_eq!(
            tree(&canary),
            canary_before,
            "{case} changed the canary beside crustd's root"
        );
        assert_eq!(
            tree(abs.path()),
            abs_before,
            "{case} changed the canary at {abs_s}"
        );
    }

    // The sparse file takes no disk; the bomb is an ordinary 64 MiB file.
    let sparse = find(&d.root(), "sparse");
    assert!(!sparse.is_empty(), "no sparse file in crustd's snapshots");
    for (p, len, disk) in sparse {
        assert_eq!(len, SPARSE, "{}", p.display());
        assert!(disk < 16 << 20, "{}: {disk} bytes on disk", p.display());
    }

    // Images whose user files are not regular files are refused at CreateContainer, promptly.
    let pc = pod_config("evil", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    for (case, name) in &pulled {
        if !case.starts_with("passwd") {
            continue;
        }
        let mut cc = container_config(case, name, &["/bin/true"]);
        cc.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .run_as_username = "root".into();
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            rt.create_container(kc::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(cc),
                sandbox_config: Some(pc.clone()),
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("CreateContainer of {case} hung"));
        let e = r.expect_err(case);
        assert_eq!(e.code(), Code::InvalidArgument, "{case}: {e:?}");
    }
    assert_eq!(
        tree(&canary),
        canary_before,
        "CreateContainer changed the canary"
    );
    // busybox, whose layer every image above shares, still runs.
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("bb", &busybox, &["/bin/sh", "-c", "test -x /bin/busybox"]),
    )
    .await
    .unwrap();
    let st = pods::wait_exited(&mut rt, &c).await;
    assert_eq!(st.exit_code, 0, "busybox no longer runs: {st:?}");
    pods::remove_pod(&mut rt, &pod).await;
    for (_, name) in &pulled {
        images.remove(name).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let worst = probe.await.unwrap();
    eprintln!("slowest Version during the pulls: {worst:?}");
    assert!(
        worst < Duration::from_secs(2),
        "Version took {worst:?} during the pulls"
    );
}
