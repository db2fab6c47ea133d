//! Image store tests without a registry: archives built here are imported, then listed,
//! looked up, and removed, checking reference counting down to the files on disk.

use std::io::Write as _;

use super::*;

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An OCI layout tarball with one image per `(name, layers)`.
fn oci_archive(images: &[(&str, Vec<Vec<u8>>)]) -> Vec<u8> {
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut index = Vec::new();
    for (name, layers) in images {
        let mut diff_ids = Vec::new();
        let mut ldesc = Vec::new();
        for l in layers {
            diff_ids.push(Digest::of(l).to_string());
            let gz = gzip(l);
            ldesc.push(serde_json::json!({"mediaType": manifest::OCI_LAYER_GZIP, "digest": Digest::of(&gz).to_string(), "size": gz.len()}));
            blobs.push(gz);
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        }))
        .unwrap();
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": Digest::of(&config).to_string(), "size": config.len()},
            "layers": ldesc
        }))
        .unwrap();
        index.push(serde_json::json!({"mediaType": manifest::OCI_MANIFEST, "digest": Digest::of(&m).to_string(), "size": m.len(),
            "annotations": {"io.containerd.image.name": name}}));
        blobs.push(config);
        blobs.push(m);
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in &blobs {
        add(&format!("blobs/sha256/{}", Digest::of(blob).hex()), blob);
    }
    add(
        "index.json",
        &serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": index})).unwrap(),
    );
    b.into_inner().unwrap()
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

#[tokio::test]
async fn import_list_lookup_remove_refcounts() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (layer ownership)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let images = Images::open(&root, RegistryConfig::default()).unwrap();
    let base = layer(&[("bin/sh", b"shell")]);
    let arch = oci_archive(&[
        ("example.com/a:1", vec![base.clone(), layer(&[("a", b"a")])]),
        ("example.com/b:1", vec![base.clone(), layer(&[("b", b"b")])]),
    ]);
    let path = dir.path().join("a.tar");
    std::fs::write(&path, &arch).unwrap();
    let got = images.import(&path, None).await.unwrap();
    assert_eq!(got.len(), 2);
    let a = images.get("example.com/a:1").unwrap();
    assert_eq!(a.repo_tags, vec!["example.com/a:1".to_string()]);
    assert_eq!(a.repo_digests.len(), 1);
    assert!(a.repo_digests[0].starts_with("example.com/a@sha256:"));
    assert_eq!(a.record.config.cmd, vec!["/bin/sh".to_string()]);
    assert_eq!(images.get(&a.id()[7..19]).unwrap().id(), a.id());
    assert_eq!(images.get(&a.repo_digests[0]).unwrap().id(), a.id());
    assert_eq!(images.list().unwrap().len(), 2);
    // 3 snapshots: the shared base plus one per image.
    assert_eq!(images.snapshotter().list().unwrap().len(), 3);
    let top = images
        .snapshotter()
        .fs_dir(a.top_chain_id().unwrap())
        .unwrap();
    assert_eq!(std::fs::read(top.join("a")).unwrap(), b"a");

    // A second name for a: removing one tag keeps the other.
    std::fs::write(
        &path,
        oci_archive(&[("example.com/a:2", vec![base.clone(), layer(&[("a", b"a")])])]),
    )
    .unwrap();
    images.import(&path, None).await.unwrap();
    let a = images.get("example.com/a:2").unwrap();
    assert_eq!(a.repo_tags.len(), 2);
    images.remove("example.com/a:1").await.unwrap();
    assert_eq!(
        images.get(a.id()).unwrap().repo_tags,
        vec!["example.com/a:2".to_string()]
    );
    assert_eq!(
        images.remove("example.com/a:1").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Removing a by id frees its own layer but not the shared base.
    images.remove(a.id()).await.unwrap();
    assert!(images.get("example.com/a:2").is_err());
    assert_eq!(images.snapshotter().list().unwrap().len(), 2);
    images.remove("example.com/b:1").await.unwrap();
    assert!(images.list().unwrap().is_empty());
    assert!(images.snapshotter().list().unwrap().is_empty());
    assert_eq!(count(&root.join("content/blobs/sha256")), 0);
    assert_eq!(count(&root.join("snapshots")), 0);
    assert_eq!(count(&root.join("content/ingest")), 0);
}

#[tokio::test]
async fn bad_archives_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let images = Images::open(&dir.path().join("root"), RegistryConfig::default()).unwrap();
    let p = dir.path().join("x.tar");
    std::fs::write(&p, b"not a tar at all, clearly").unwrap();
    assert_eq!(
        images.import(&p, None).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // A blob whose content does not match its name.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(
        &mut h,
        format!("blobs/sha256/{}", "0".repeat(64)),
        &b"abc"[..],
    )
    .unwrap();
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    assert_eq!(
        images.import(&p, None).await.unwrap_err().kind(),
        ErrorKind::DataLoss
    );
    assert_eq!(count(&dir.path().join("root/content/blobs/sha256")), 0);
    assert_eq!(count(&dir.path().join("root/content/ingest")), 0);
}
