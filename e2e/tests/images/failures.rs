//! Pulls that go wrong: killed mid-pull, bad registry content, hostile layers.

use super::*;

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
