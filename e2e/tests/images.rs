//! End-to-end tests of the image half: real docker-registry, real crustd, CRI client.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crust_e2e::daemon::{count, Crustd};
use crust_e2e::fake::{routes_for, Fake, Reply};
use crust_e2e::image::{self, busybox_layer, Compression, Flavour, Layer};
use crust_e2e::registry::Registry;
use crust_e2e::{cri, require_root};
use k8s_cri::v1::AuthConfig;
use tonic::Code;

/// A three-layer image: busybox, then a layer adding files, then one deleting and hiding.
fn layered() -> Vec<Vec<u8>> {
    let l2 = Layer::new()
        .dir("data", 0o755)
        .file("data/keep", b"keep", 0o644)
        .file("data/gone", b"gone", 0o644)
        .dir("data/sub", 0o755)
        .file("data/sub/old", b"old", 0o644)
        .owned_file("data/owned", b"x", 0o4750, 1234, 5678)
        .hardlink("data/keep-link", "data/keep")
        .finish();
    let l3 = Layer::new()
        .dir("data", 0o755)
        .whiteout("data/gone")
        .dir("data/sub", 0o755)
        .opaque("data/sub")
        .file("data/sub/new", b"new", 0o644)
        .finish();
    vec![busybox_layer(), l2, l3]
}

fn store_is_empty(d: &Crustd) {
    let root = d.root();
    assert_eq!(
        count(&root.join("content/blobs/sha256")),
        0,
        "blobs left: {}",
        d.log()
    );
    assert_eq!(count(&root.join("content/ingest")), 0, "ingest left");
    assert_eq!(count(&root.join("snapshots")), 0, "snapshots left");
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_status_list_remove_and_unpacked_layers() {
    require_root!();
    let reg = Registry::start();
    let host = reg.host();
    let img = image::build(
        &layered(),
        Compression::Gzip,
        Flavour::Docker,
        image::host_arch(),
        &[("k", "v")],
    );
    image::push(&host, "test/busybox", "v1", &img, None).await;
    image::push(&host, "test/busybox", "v2", &img, None).await;
    let mut d = Crustd::start("");
    let mut c = cri::Images::new(d.channel().await);

    let tag1 = format!("{host}/test/busybox:v1");
    let tag2 = format!("{host}/test/busybox:v2");
    let by_digest = format!("{host}/test/busybox@{}", img.manifest_digest);
    assert_eq!(c.pull(&tag1, None).await.unwrap(), img.id);
    assert_eq!(c.pull(&by_digest, None).await.unwrap(), img.id);
    assert_eq!(c.pull(&tag2, None).await.unwrap(), img.id);

    let listed = c.list(None).await;
    assert_eq!(listed.len(), 1);
    let i = &listed[0];
    assert_eq!(i.id, img.id);
    assert_eq!(i.repo_tags, vec![tag1.clone(), tag2.clone()]);
    assert_eq!(i.repo_digests, vec![by_digest.clone()]);
    assert_eq!(i.uid.as_ref().map(|u| u.value), Some(0));
    assert!(i.size > 1_000_000);
    for spec in [tag1.as_str(), &img.id, &img.id[7..20], &by_digest] {
        assert_eq!(
            c.status(spec, false).await.image.map(|i| i.id),
            Some(img.id.clone()),
            "{spec}"
        );
    }
    assert!(c
        .status(&format!("{host}/test/busybox:nope"), false)
        .await
        .image
        .is_none());
    let verbose = c.status(&tag1, true).await;
    let info: serde_json::Value = serde_json::from_str(&verbose.info["info"]).unwrap();
    assert_eq!(info["imageSpec"]["config"]["Labels"]["k"], "v");
    assert_eq!(c.list(Some(&tag2)).await.len(), 1);
    assert!(c.list(Some("nothing:here")).await.is_empty());

    // Removing one tag keeps the image under the other.
    c.remove(&tag1).await.unwrap();
    let i = c.status(&tag2, false).await.image.unwrap();
    assert_eq!(i.repo_tags, vec![tag2.clone()]);
    assert!(c.status(&tag1, false).await.image.is_none());

    // The unpacked layers, merged by overlayfs, are the image's filesystem.
    d.stop();
    {
        let images = crust_daemon::images::Images::open(&d.root(), Default::default()).unwrap();
        let mounts = images.prepare_rootfs("e2e-ctr", &tag2).unwrap();
        let m = &mounts[0];
        let target = tempfile::tempdir().unwrap();
        nix::mount::mount(
            Some("overlay"),
            target.path(),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(m.options.join(",").as_str()),
        )
        .unwrap();
        let t = target.path();
        let check = std::panic::catch_unwind(|| {
            assert_eq!(std::fs::read(t.join("data/keep")).unwrap(), b"keep");
            assert!(!t.join("data/gone").exists());
            assert!(!t.join("data/sub/old").exists());
            assert_eq!(std::fs::read(t.join("data/sub/new")).unwrap(), b"new");
            let k = std::fs::metadata(t.join("data/keep")).unwrap();
            assert_eq!(
                std::fs::metadata(t.join("data/keep-link")).unwrap().ino(),
                k.ino()
            );
            let o = std::fs::metadata(t.join("data/owned")).unwrap();
            assert_eq!((o.uid(), o.gid(), o.mode() & 0o7777), (1234, 5678, 0o4750));
            assert_eq!(
                std::fs::read_link(t.join("bin/sh")).unwrap().to_str(),
                Some("busybox")
            );
            let out = std::process::Command::new("chroot")
                .arg(t)
                .args(["/bin/sh", "-c", "echo hi"])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        });
        nix::mount::umount(target.path()).unwrap();
        check.unwrap();
        // The whiteout is overlayfs' 0:0 char device in the layer itself.
        let snaps = images.snapshotter();
        use crust_daemon::snapshots::Snapshotter as _;
        let top = snaps
            .fs_dir(&serde_json::from_value::<String>(info["chainID"].clone()).unwrap())
            .unwrap();
        assert!(std::fs::symlink_metadata(top.join("data/gone"))
            .unwrap()
            .file_type()
            .is_char_device());
        snaps.remove("e2e-ctr").unwrap();
    }
    d.restart();
    let mut c = cri::Images::new(d.channel().await);

    // Removing by id removes every name and frees everything.
    c.remove(&img.id).await.unwrap();
    assert!(c.list(None).await.is_empty());
    assert!(c.status(&by_digest, false).await.image.is_none());
    c.remove(&img.id).await.unwrap(); // idempotent, as containerd
    store_is_empty(&d);
    assert!(d.stop(), "crustd did not stop cleanly on SIGTERM");
    assert!(!d.socket().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_layers_are_freed_only_when_unused() {
    require_root!();
    let reg = Registry::start();
    let host = reg.host();
    let base = busybox_layer();
    let a = image::build(
        &[base.clone(), Layer::new().file("a", b"a", 0o644).finish()],
        Compression::Zstd,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    let b = image::build(
        &[base, Layer::new().file("b", b"b", 0o644).finish()],
        Compression::None,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    image::push(&host, "t/a", "1", &a, None).await;
    image::push(&host, "t/b", "1", &b, None).await;
    let d = Crustd::start("");
    let mut c = cri::Images::new(d.channel().await);
    c.pull(&format!("{host}/t/a:1"), None).await.unwrap();
    c.pull(&format!("{host}/t/b:1"), None).await.unwrap();
    assert_eq!(count(&d.root().join("snapshots")), 3);
    c.remove(&format!("{host}/t/a:1")).await.unwrap();
    assert_eq!(count(&d.root().join("snapshots")), 2);
    // b's blobs: config, manifest, 2 layers.
    assert_eq!(count(&d.root().join("content/blobs/sha256")), 4);
    c.remove(&format!("{host}/t/b:1")).await.unwrap();
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_arch_index_resolves_host_platform() {
    require_root!();
    let reg = Registry::start();
    let host = reg.host();
    let other = if image::host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let mine = image::busybox();
    let theirs = image::build(
        &[Layer::new().file("x", b"x", 0o644).finish()],
        Compression::Gzip,
        Flavour::Oci,
        other,
        &[],
    );
    let idx = image::push_index(&host, "t/multi", "latest", &[&theirs, &mine]).await;
    let d = Crustd::start("");
    let mut c = cri::Images::new(d.channel().await);
    assert_eq!(
        c.pull(&format!("{host}/t/multi"), None).await.unwrap(),
        mine.id
    );
    let i = c
        .status(&format!("{host}/t/multi:latest"), false)
        .await
        .image
        .unwrap();
    assert_eq!(i.repo_digests, vec![format!("{host}/t/multi@{idx}")]);
    c.remove(&mine.id).await.unwrap();
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_basic_auth_field_and_docker_config() {
    require_root!();
    let reg = Registry::start_auth("alice", "s3cret");
    let host = reg.host();
    let img = image::busybox();
    image::push(&host, "t/private", "1", &img, Some(("alice", "s3cret"))).await;
    let dir = tempfile::tempdir().unwrap();
    let dcfg = dir.path().join("config.json");
    let d = Crustd::start(&format!(
        "[registry]\ndocker_config = \"{}\"\n",
        dcfg.display()
    ));
    let mut c = cri::Images::new(d.channel().await);
    let name = format!("{host}/t/private:1");

    let e = c.pull(&name, None).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains(&name), "{}", e.message());
    let wrong = AuthConfig {
        username: "alice".into(),
        password: "nope".into(),
        ..Default::default()
    };
    assert_eq!(
        c.pull(&name, Some(wrong)).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    store_is_empty(&d);

    let right = AuthConfig {
        username: "alice".into(),
        password: "s3cret".into(),
        ..Default::default()
    };
    assert_eq!(c.pull(&name, Some(right)).await.unwrap(), img.id);
    c.remove(&img.id).await.unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let field = AuthConfig {
        auth: b64.clone(),
        ..Default::default()
    };
    assert_eq!(c.pull(&name, Some(field)).await.unwrap(), img.id);
    c.remove(&img.id).await.unwrap();

    std::fs::write(
        &dcfg,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    assert_eq!(c.pull(&name, None).await.unwrap(), img.id);
    c.remove(&img.id).await.unwrap();
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn mirrors_map_registries_without_upstream_fallback() {
    require_root!();
    let reg = Registry::start();
    let img = image::build(
        &[busybox_layer()],
        Compression::Gzip,
        Flavour::Docker,
        image::host_arch(),
        &[],
    );
    image::push(&reg.host(), "library/busybox", "1.36", &img, None).await;
    image::push(&reg.host(), "team/app", "1", &img, None).await;
    let cfg = format!(
        "[registry.hosts.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:{}\", \"http://{}\"]\n[registry.hosts.\"registry.invalid\"]\nmirrors = [\"http://{}\"]\n",
        crust_e2e::free_port(),
        reg.host(),
        reg.host()
    );
    let d = Crustd::start(&cfg);
    let mut c = cri::Images::new(d.channel().await);
    // Short name → docker.io/library, served by the second mirror (the first is down).
    assert_eq!(c.pull("busybox:1.36", None).await.unwrap(), img.id);
    let i = c.status("busybox:1.36", false).await.image.unwrap();
    assert_eq!(
        i.repo_tags,
        vec!["docker.io/library/busybox:1.36".to_string()]
    );
    assert_eq!(
        c.status("docker.io/library/busybox:1.36", false)
            .await
            .image
            .unwrap()
            .id,
        img.id
    );
    assert_eq!(
        c.pull("registry.invalid/team/app:1", None).await.unwrap(),
        img.id
    );
    // A mirror that answers "not found" ends the pull: registry.invalid is never asked
    // (it does not resolve, which would be Unavailable).
    let e = c
        .pull("registry.invalid/team/missing:1", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(
        e.message().contains("registry.invalid/team/missing:1"),
        "{}",
        e.message()
    );
    c.remove(&img.id).await.unwrap();
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_do_the_work_once() {
    require_root!();
    let reg = Registry::start();
    let host = reg.host();
    let img = image::build(
        &layered(),
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    image::push(&host, "t/conc", "1", &img, None).await;
    let d = Crustd::start("");
    let ch = d.channel().await;
    let name = format!("{host}/t/conc:1");
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let mut c = cri::Images::new(ch.clone());
        let n = name.clone();
        tasks.push(tokio::spawn(async move { c.pull(&n, None).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), img.id);
    }
    assert_eq!(count(&d.root().join("snapshots")), 3);
    let log = reg.log();
    for (dg, _) in &img.blobs {
        let gets = log
            .lines()
            .filter(|l| l.contains("\"GET /v2/t/conc/blobs/") && l.contains(dg.as_str()))
            .count();
        assert!(gets <= 1, "blob {dg} fetched {gets} times");
    }
    let mut c = cri::Images::new(ch);
    c.remove(&name).await.unwrap();
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_oci_and_docker_archives_via_crustctl() {
    require_root!();
    let d = Crustd::start("");
    let img = image::build(
        &layered(),
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    let plain = image::build(
        &[busybox_layer()],
        Compression::None,
        Flavour::Oci,
        image::host_arch(),
        &[("x", "y")],
    );
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("oci.tar");
    std::fs::write(
        &oci,
        image::oci_archive(&[("example.com/imported:1", &img)]),
    )
    .unwrap();
    let docker = dir.path().join("docker.tar");
    std::fs::write(&docker, image::docker_archive(&["busybox:saved"], &plain)).unwrap();
    let ctl = crust_e2e::workspace_bin("crust-ctl", "crustctl");
    let ep = format!("unix://{}", d.socket().display());
    for (args, want) in [
        (
            vec!["import".to_string(), oci.display().to_string()],
            "example.com/imported:1",
        ),
        (
            vec![
                "images".to_string(),
                "import".to_string(),
                docker.display().to_string(),
            ],
            "docker.io/library/busybox:saved",
        ),
    ] {
        let out = std::process::Command::new(&ctl)
            .arg("-r")
            .arg(&ep)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(want));
    }
    let mut c = cri::Images::new(d.channel().await);
    assert_eq!(
        c.status("example.com/imported:1", false)
            .await
            .image
            .unwrap()
            .id,
        img.id
    );
    assert_eq!(
        c.status("busybox:saved", false).await.image.unwrap().id,
        plain.id
    );
    let out = std::process::Command::new(&ctl)
        .arg("-r")
        .arg(&ep)
        .arg("images")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("docker.io/library/busybox")
            && table.contains("saved")
            && table.contains(&img.id[7..20]),
        "{table}"
    );
    // Bad archives: a clear error, nothing left.
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, b"garbage").unwrap();
    let out = std::process::Command::new(&ctl)
        .arg("-r")
        .arg(&ep)
        .arg("import")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidArgument"));
    c.remove(&img.id).await.unwrap();
    c.remove(&plain.id).await.unwrap();
    store_is_empty(&d);
}

/// `crustd import` loads an archive straight into a stopped crustd's root; it refuses a root a
/// running crustd holds, and crustctl (a CRI client only) points there for `--root`.
#[tokio::test(flavor = "multi_thread")]
async fn crustd_import_fills_a_stopped_root() {
    require_root!();
    let mut d = Crustd::start("");
    let img = image::build(
        &[busybox_layer()],
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("oci.tar");
    std::fs::write(&oci, image::oci_archive(&[("example.com/offline:1", &img)])).unwrap();
    let crustd = crust_e2e::workspace_bin("crust-cri", "crustd");
    let (root, config) = (d.root(), d.dir.path().join("config.toml"));
    let offline = || {
        std::process::Command::new(&crustd)
            .arg("import")
            .arg("--root")
            .arg(&root)
            .arg("--config")
            .arg(&config)
            .arg(&oci)
            .output()
            .unwrap()
    };
    // crustd holds the root: refused by its lock, naming the holder, with the way out named.
    let out = offline();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("crustctl import"),
        "{err}"
    );
    let holder = format!("pid {}", d.pid().expect("crustd runs"));
    assert!(err.contains(&holder) && err.contains("in use"), "{err}");
    // crustctl has no store of its own to open.
    let out = std::process::Command::new(crust_e2e::workspace_bin("crust-ctl", "crustctl"))
        .arg("-r")
        .arg(format!("unix://{}", d.socket().display()))
        .args(["import", "--root"])
        .arg(d.root())
        .arg(&oci)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("crustd import --root"),
        "{err}"
    );
    assert!(d.stop());
    let out = offline();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("example.com/offline:1") && text.contains(&img.id),
        "{text}"
    );
    d.restart();
    let mut c = cri::Images::new(d.channel().await);
    let st = c
        .status("example.com/offline:1", false)
        .await
        .image
        .unwrap();
    assert_eq!(st.id, img.id);
    c.remove(&img.id).await.unwrap();
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_during_pull_then_restart_is_consistent() {
    require_root!();
    let reg = Registry::start();
    let host = reg.host();
    // Incompressible layers so the pull takes a while even on loopback.
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut noise = |n: usize| {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect::<Vec<u8>>()
    };
    let mut layers = vec![busybox_layer()];
    for i in 0..4 {
        layers.push(
            Layer::new()
                .file(&format!("blob{i}"), &noise(12 << 20), 0o644)
                .finish(),
        );
    }
    let img = image::build(
        &layers,
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    image::push(&host, "t/big", "1", &img, None).await;
    let name = format!("{host}/t/big:1");
    let mut d = Crustd::start("");
    for delay_ms in [350u64, 700] {
        let mut c = cri::Images::new(d.channel().await);
        let n = name.clone();
        let pull = tokio::spawn(async move { c.pull(&n, None).await });
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        d.kill9();
        let _ = pull.await;
        d.restart();
        let mut c = cri::Images::new(d.channel().await);
        // Either the old state (no image) or the new (complete image), never half.
        let status = c.status(&name, false).await.image;
        eprintln!(
            "killed after {delay_ms} ms: image {}; crash leftovers removed at restart: {}",
            if status.is_some() {
                "complete"
            } else {
                "absent"
            },
            d.log()
                .lines()
                .rev()
                .find(|l| l.contains("removed leftovers"))
                .unwrap_or("none")
        );
        if let Some(i) = status {
            assert_eq!(i.id, img.id);
            c.remove(&img.id).await.unwrap();
        }
        store_is_empty(&d);
    }
    let mut c = cri::Images::new(d.channel().await);
    assert_eq!(c.pull(&name, None).await.unwrap(), img.id);
    assert_eq!(count(&d.root().join("snapshots")), 5);
    c.remove(&name).await.unwrap();
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_registry_content_gives_clear_errors_and_leaves_nothing() {
    require_root!();
    let d = Crustd::start("");
    let mut c = cri::Images::new(d.channel().await);
    let good = image::build(
        &[
            busybox_layer(),
            Layer::new().file("f", b"f", 0o644).finish(),
        ],
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    let layer_digest = good.blobs[2].0.clone();

    type Tweak<'a> = Box<dyn Fn(&mut HashMap<String, Reply>) + 'a>;
    let cases: Vec<(&str, Tweak, Code, &str)> = vec![
        (
            "digest mismatch",
            Box::new(|r| {
                let b = r
                    .iter_mut()
                    .find(|(k, _)| k.ends_with(&layer_digest))
                    .unwrap()
                    .1;
                let n = b.body.len();
                b.body[n / 2] ^= 0xff;
            }),
            Code::DataLoss,
            "digest",
        ),
        (
            // A 200 instead of a 206: oci-client verifies as well as the content store.
            "digest mismatch, registry without ranges",
            Box::new(|r| {
                let b = r
                    .iter_mut()
                    .find(|(k, _)| k.ends_with(&layer_digest))
                    .unwrap()
                    .1;
                let n = b.body.len();
                b.body[n / 2] ^= 0xff;
                b.ranges = false;
            }),
            Code::DataLoss,
            "digest",
        ),
        (
            "truncated blob",
            Box::new(|r| {
                let b = r
                    .iter_mut()
                    .find(|(k, _)| k.ends_with(&layer_digest))
                    .unwrap()
                    .1;
                b.length = Some(b.body.len());
                b.body.truncate(b.body.len() / 2);
            }),
            Code::Unavailable,
            "",
        ),
        (
            "unknown media type",
            Box::new(|r| {
                for (k, v) in r.iter_mut() {
                    if k.contains("/manifests/") {
                        v.body = String::from_utf8(v.body.clone())
                            .unwrap()
                            .replace("tar+gzip", "tar+lz4")
                            .into_bytes();
                    }
                }
            }),
            Code::InvalidArgument,
            "tar+lz4",
        ),
        (
            "malformed manifest",
            Box::new(|r| {
                for (k, v) in r.iter_mut() {
                    if k.contains("/manifests/") {
                        v.body = b"{\"schemaVersion\": 2, \"layers\": 7}".to_vec();
                    }
                }
            }),
            Code::InvalidArgument,
            "manifest",
        ),
        (
            "missing blob",
            Box::new(|r| {
                r.retain(|k, _| !k.ends_with(&layer_digest));
            }),
            Code::NotFound,
            "",
        ),
    ];
    for (what, tweak, code, needle) in cases {
        let mut routes = routes_for("t/bad", "1", &good);
        tweak(&mut routes);
        let fake = Fake::start(routes).await;
        let name = format!("{}/t/bad:1", fake.host());
        let e = c.pull(&name, None).await.expect_err(what);
        assert_eq!(e.code(), code, "{what}: {e:?}");
        assert!(e.message().contains(&name), "{what}: {}", e.message());
        assert!(e.message().contains(needle), "{what}: {}", e.message());
        assert!(c.list(None).await.is_empty(), "{what}");
        store_is_empty(&d);
    }
    // Unreachable registry.
    let name = format!("127.0.0.1:{}/t/x:1", crust_e2e::free_port());
    let e = c.pull(&name, None).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains(&name));
    // Unknown image on a real registry.
    let reg = Registry::start();
    let e = c
        .pull(&format!("{}/t/none:1", reg.host()), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // Invalid reference.
    assert_eq!(
        c.pull("Not A Ref", None).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        c.pull("", None).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    store_is_empty(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_layers_fail_cleanly_and_escape_nothing() {
    require_root!();
    let reg = Registry::start();
    let host = reg.host();
    let d = Crustd::start("");
    let mut c = cri::Images::new(d.channel().await);
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path().display().to_string();
    std::fs::write(outside.path().join("secret"), b"keep").unwrap();
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            Layer::new()
                .raw(
                    "../../../../../../../../../../tmp/crust-escape",
                    tar::EntryType::Regular,
                    "",
                    b"x",
                )
                .finish(),
        ),
        (
            "absolute",
            Layer::new()
                .raw(&format!("{o}/abs"), tar::EntryType::Regular, "", b"x")
                .finish(),
        ),
        (
            "symlink parent",
            Layer::new()
                .symlink("evil", &o)
                .raw("evil/viaLink", tar::EntryType::Regular, "", b"x")
                .finish(),
        ),
        (
            "symlink chain",
            Layer::new()
                .symlink("a", "b")
                .symlink("b", &o)
                .raw("a/chain", tar::EntryType::Regular, "", b"x")
                .finish(),
        ),
        (
            "hardlink out",
            Layer::new()
                .raw("h", tar::EntryType::Link, &format!("{o}/secret"), b"")
                .finish(),
        ),
        (
            "hardlink via symlink",
            Layer::new()
                .symlink("s", &o)
                .raw("h", tar::EntryType::Link, "s/secret", b"")
                .finish(),
        ),
    ];
    for (what, layer) in hostile {
        let img = image::build(
            &[busybox_layer(), layer],
            Compression::Gzip,
            Flavour::Oci,
            image::host_arch(),
            &[],
        );
        image::push(&host, "t/evil", what.replace(' ', "-").as_str(), &img, None).await;
        let name = format!("{host}/t/evil:{}", what.replace(' ', "-"));
        let e = c.pull(&name, None).await.expect_err(what);
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(e.message().contains(&name), "{what}: {}", e.message());
        let mut left: Vec<_> = std::fs::read_dir(outside.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, vec![std::ffi::OsString::from("secret")], "{what}");
        assert_eq!(
            std::fs::metadata(outside.path().join("secret"))
                .unwrap()
                .nlink(),
            1,
            "{what}"
        );
        assert!(
            !std::path::Path::new("/tmp/crust-escape").exists(),
            "{what}"
        );
        store_is_empty(&d);
    }
}
