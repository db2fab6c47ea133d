//! Images built in Rust for the tests: tar layers (busybox-static, whiteouts, opaque
//! directories, hardlinks, or hostile entries), configs, OCI or Docker schema2 manifests,
//! multi-arch indexes, pushed through the distribution API, or written as OCI-layout and
//! `docker save` archives.

use std::io::Write as _;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest as _, Sha256};
use tonic::codegen::http::HeaderValue;

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Builds one layer tarball.
pub struct Layer(tar::Builder<Vec<u8>>);

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    /// A directory.
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        self.0
            .append_data(&mut h, path, std::io::empty())
            .expect("tar dir");
        self
    }

    /// A regular file.
    pub fn file(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).expect("tar file");
        self
    }

    /// A regular file owned by `uid:gid`.
    pub fn owned_file(mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.0.append_data(&mut h, path, data).expect("tar file");
        self
    }

    /// A symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.0
            .append_link(&mut h, path, target)
            .expect("tar symlink");
        self
    }

    /// A hardlink to an earlier entry.
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.0
            .append_link(&mut h, path, target)
            .expect("tar hardlink");
        self
    }

    /// A whiteout deleting `path` from lower layers.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path
            .rsplit_once('/')
            .map(|(d, n)| (format!("{d}/"), n))
            .unwrap_or((String::new(), path));
        self.file(&format!("{dir}.wh.{name}"), b"", 0o644)
    }

    /// Marks `dir` opaque: lower layers' contents of it are hidden.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            b"",
            0o644,
        )
    }

    /// An entry with an unvalidated name and link target (for hostile layers).
    pub fn raw(mut self, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Self {
        let mut h = header(kind, 0o644, data.len() as u64);
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        self.0.append(&h, data).expect("tar raw");
        self
    }

    /// The tarball.
    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().expect("tar finish")
    }
}

/// A layer with Debian's busybox-static as `/bin/busybox` and a few applet links.
pub fn busybox_layer() -> Vec<u8> {
    let bb =
        std::fs::read("/bin/busybox").expect("read /bin/busybox (apt-get install busybox-static)");
    let mut l = Layer::new()
        .dir("bin", 0o755)
        .dir("etc", 0o755)
        .dir("tmp", 0o1777)
        .file("bin/busybox", &bb, 0o755);
    for applet in ["sh", "ls", "cat", "echo", "sleep", "true"] {
        l = l.symlink(&format!("bin/{applet}"), "busybox");
    }
    l.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        0o644,
    )
    .finish()
}

/// The busybox image most tests use: one gzip layer, OCI manifest, the host's architecture.
pub fn busybox() -> Image {
    build(
        &[busybox_layer()],
        Compression::Gzip,
        Flavour::Oci,
        host_arch(),
        &[],
    )
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Manifest flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// OCI media types.
    Oci,
    /// Docker schema2 media types.
    Docker,
}

/// A built image: config, manifest and blobs.
#[derive(Debug, Clone)]
pub struct Image {
    /// Config JSON.
    pub config: Vec<u8>,
    /// Manifest JSON.
    pub manifest: Vec<u8>,
    /// Manifest media type.
    pub media_type: String,
    /// `(digest, bytes)` of config and layers.
    pub blobs: Vec<(String, Vec<u8>)>,
    /// Uncompressed layers.
    pub layers: Vec<Vec<u8>>,
    /// Image id (config digest).
    pub id: String,
    /// Manifest digest.
    pub manifest_digest: String,
    /// Architecture in the config.
    pub arch: String,
}

/// Builds an image from uncompressed layers.
pub fn build(
    layers: &[Vec<u8>],
    compression: Compression,
    flavour: Flavour,
    arch: &str,
    labels: &[(&str, &str)],
) -> Image {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/", "User": "0", "Labels": labels, "StopSignal": "SIGTERM"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config json");
    let (mt_manifest, mt_config, mt_layer) = match (flavour, compression) {
        (Flavour::Oci, c) => (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            match c {
                Compression::None => "application/vnd.oci.image.layer.v1.tar",
                Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            },
        ),
        (Flavour::Docker, _) => (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
    };
    let mut blobs = vec![(digest(&config), config.clone())];
    let mut ldesc = Vec::new();
    for l in layers {
        let data = match compression {
            Compression::None => l.clone(),
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(l).expect("gzip");
                e.finish().expect("gzip")
            }
            Compression::Zstd => zstd::encode_all(&l[..], 3).expect("zstd"),
        };
        ldesc.push(
            serde_json::json!({"mediaType": mt_layer, "digest": digest(&data), "size": data.len()}),
        );
        blobs.push((digest(&data), data));
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": mt_manifest,
        "config": {"mediaType": mt_config, "digest": digest(&config), "size": config.len()},
        "layers": ldesc,
    }))
    .expect("manifest json");
    Image {
        id: digest(&config),
        manifest_digest: digest(&manifest),
        config,
        manifest,
        media_type: mt_manifest.into(),
        blobs,
        layers: layers.to_vec(),
        arch: arch.into(),
    }
}

/// The host architecture in OCI terms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn client() -> Client {
    crust_daemon::images::install_crypto();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
}

fn reg_auth(auth: Option<(&str, &str)>) -> RegistryAuth {
    auth.map(|(u, p)| RegistryAuth::Basic(u.into(), p.into()))
        .unwrap_or(RegistryAuth::Anonymous)
}

/// Pushes raw manifest bytes under `reference` (tag or digest).
pub async fn push_manifest(
    host: &str,
    repo: &str,
    reference: &str,
    body: &[u8],
    media_type: &str,
    auth: Option<(&str, &str)>,
) {
    let c = client();
    let r = if reference.starts_with("sha256:") {
        Reference::with_digest(host.into(), repo.into(), reference.into())
    } else {
        Reference::with_tag(host.into(), repo.into(), reference.into())
    };
    c.auth(&r, &reg_auth(auth), RegistryOperation::Push)
        .await
        .expect("registry auth");
    c.push_manifest_raw(
        &r,
        body.to_vec(),
        HeaderValue::from_str(media_type).expect("media type"),
    )
    .await
    .expect("push manifest");
}

/// Pushes blobs and manifest of `img` as `host/repo:tag`.
pub async fn push(host: &str, repo: &str, tag: &str, img: &Image, auth: Option<(&str, &str)>) {
    let c = client();
    let r = Reference::with_tag(host.into(), repo.into(), tag.into());
    c.auth(&r, &reg_auth(auth), RegistryOperation::Push)
        .await
        .expect("registry auth");
    for (d, data) in &img.blobs {
        c.push_blob(&r, data.clone(), d).await.expect("push blob");
    }
    push_manifest(host, repo, tag, &img.manifest, &img.media_type, auth).await;
}

/// An OCI index over `images` (each with its config's architecture); `(bytes, digest)`.
pub fn index(images: &[&Image]) -> (Vec<u8>, String) {
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|i| {
            serde_json::json!({"mediaType": i.media_type, "digest": i.manifest_digest, "size": i.manifest.len(),
                "platform": {"architecture": i.arch, "os": "linux"}})
        })
        .collect();
    let b = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}))
        .expect("index json");
    let d = digest(&b);
    (b, d)
}

/// Pushes `images` by digest and an index over them as `host/repo:tag`; returns the index digest.
pub async fn push_index(host: &str, repo: &str, tag: &str, images: &[&Image]) -> String {
    for img in images {
        push(host, repo, "tmp", img, None).await;
        push_manifest(
            host,
            repo,
            &img.manifest_digest,
            &img.manifest,
            &img.media_type,
            None,
        )
        .await;
    }
    let (b, d) = index(images);
    push_manifest(
        host,
        repo,
        tag,
        &b,
        "application/vnd.oci.image.index.v1+json",
        None,
    )
    .await;
    d
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, path, data).expect("tar add");
}

/// An OCI image layout tarball holding `images` under their names.
pub fn oci_archive(images: &[(&str, &Image)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut index = Vec::new();
    for (name, img) in images {
        for (d, data) in &img.blobs {
            add(&mut b, &format!("blobs/sha256/{}", &d[7..]), data);
        }
        add(
            &mut b,
            &format!("blobs/sha256/{}", &img.manifest_digest[7..]),
            &img.manifest,
        );
        index.push(serde_json::json!({"mediaType": img.media_type, "digest": img.manifest_digest, "size": img.manifest.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(':').next()}}));
    }
    add(
        &mut b,
        "index.json",
        &serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": index}))
            .expect("json"),
    );
    b.into_inner().expect("tar")
}

/// A classic `docker save` tarball (uncompressed `<id>/layer.tar`, `manifest.json`).
pub fn docker_archive(tags: &[&str], img: &Image) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let config_name = format!("{}.json", &img.id[7..]);
    add(&mut b, &config_name, &img.config);
    let mut layer_paths = Vec::new();
    for l in &img.layers {
        let p = format!("{}/layer.tar", &digest(l)[7..]);
        add(&mut b, &p, l);
        add(&mut b, &format!("{}/VERSION", &digest(l)[7..]), b"1.0");
        layer_paths.push(p);
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(
            &serde_json::json!([{"Config": config_name, "RepoTags": tags, "Layers": layer_paths}]),
        )
        .expect("json"),
    );
    b.into_inner().expect("tar")
}

/// `img` with its config's default command set to `cmd` (ids and digests recomputed),
/// e.g. a pause image that sleeps.
pub fn with_cmd(mut img: Image, cmd: &[&str]) -> Image {
    let mut cfg: serde_json::Value = serde_json::from_slice(&img.config).expect("config");
    cfg["config"]["Cmd"] = serde_json::json!(cmd);
    let config = serde_json::to_vec(&cfg).expect("config");
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest).expect("manifest");
    manifest["config"]["digest"] = serde_json::json!(digest(&config));
    manifest["config"]["size"] = serde_json::json!(config.len());
    img.manifest = serde_json::to_vec(&manifest).expect("manifest");
    img.id = digest(&config);
    img.manifest_digest = digest(&img.manifest);
    img.blobs[0] = (img.id.clone(), config.clone());
    img.config = config;
    img
}
