//! Pulling from a real registry: status, list and remove, shared layers, multi-arch
//! indexes, auth, mirrors, concurrent pulls.

use super::*;

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
