//! Loading OCI and docker archives: through crustctl, and `crustd import` into a stopped
//! root.

use super::*;

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
