//! Parsing of registry documents: image indexes / manifest lists, image manifests (OCI and
//! Docker schema2), and image configs, with the media types crust accepts. Unknown media
//! types and malformed documents are errors that name the image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// gzip OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Media types of manifests and indexes, for the `Accept` header.
pub const ACCEPT: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

/// Layer media types crust can unpack (compression is detected from the bytes).
pub fn is_layer_type(mt: &str) -> bool {
    matches!(
        mt,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: i64,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An index entry's platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (GOARCH).
    pub architecture: String,
    /// OS (GOOS).
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, if given.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest-or-index document.
#[derive(Debug, Clone)]
pub enum Document {
    /// A multi-platform index.
    Index(Index),
    /// A single-platform manifest.
    Manifest(Manifest),
}

/// Parses a manifest or index; `Err` is a human reason.
pub fn parse_document(bytes: &[u8]) -> Result<Document, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let is_index = match mt.as_deref() {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) => return Err(format!("unsupported manifest media type {other:?}")),
        None => v.get("manifests").is_some(),
    };
    if v.get("schemaVersion").and_then(|s| s.as_u64()) != Some(2) {
        return Err("schemaVersion is not 2 (schema1 manifests are not supported)".into());
    }
    if is_index {
        serde_json::from_value(v)
            .map(Document::Index)
            .map_err(|e| format!("bad index: {e}"))
    } else {
        let m: Manifest = serde_json::from_value(v).map_err(|e| format!("bad manifest: {e}"))?;
        if !matches!(m.config.media_type.as_str(), OCI_CONFIG | DOCKER_CONFIG) {
            return Err(format!(
                "unsupported config media type {:?}",
                m.config.media_type
            ));
        }
        if let Some(l) = m.layers.iter().find(|l| !is_layer_type(&l.media_type)) {
            return Err(format!("unsupported layer media type {:?}", l.media_type));
        }
        Ok(Document::Manifest(m))
    }
}

/// The host's platform in OCI terms.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        other => (other, None),
    };
    Platform {
        architecture: architecture.into(),
        os: "linux".into(),
        variant: variant.map(str::to_string),
    }
}

/// The index entry for `want`: same os and architecture, preferring a matching variant.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let candidates = index.manifests.iter().filter(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
    });
    let mut best = None;
    for d in candidates {
        let v = d.platform.as_ref().and_then(|p| p.variant.clone());
        if v == want.variant {
            return Some(d);
        }
        if best.is_none() && (v.is_none() || want.variant.is_none()) {
            best = Some(d);
        }
    }
    best
}

/// What a container needs from the image config, kept for container creation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Env`.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `User`.
    pub user: String,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `Volumes` (paths).
    pub volumes: Vec<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `StopSignal`.
    pub stop_signal: String,
    /// `ExposedPorts`.
    pub exposed_ports: Vec<String>,
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
    /// `created`.
    pub created: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    config: Option<RawRunConfig>,
    rootfs: RawRootFs,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawRunConfig {
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    labels: Option<BTreeMap<String, String>>,
    stop_signal: Option<String>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawRootFs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

/// Parses an image config; returns it and the layer diff IDs.
pub fn parse_config(bytes: &[u8]) -> Result<(ImageConfig, Vec<String>), String> {
    let raw: RawConfig =
        serde_json::from_slice(bytes).map_err(|e| format!("bad image config: {e}"))?;
    if raw.rootfs.kind != "layers" {
        return Err(format!(
            "image config rootfs.type is {:?}, not \"layers\"",
            raw.rootfs.kind
        ));
    }
    let c = raw.config.unwrap_or_default();
    Ok((
        ImageConfig {
            env: c.env.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            labels: c.labels.unwrap_or_default(),
            stop_signal: c.stop_signal.unwrap_or_default(),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            os: raw.os,
            architecture: raw.architecture,
            created: raw.created,
        },
        raw.rootfs.diff_ids,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_platforms() {
        let d = |a: &str, v: Option<&str>| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{a}"),
            size: 1,
            platform: Some(Platform {
                architecture: a.into(),
                os: "linux".into(),
                variant: v.map(Into::into),
            }),
            annotations: None,
        };
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![d("arm", Some("v6")), d("arm64", None), d("amd64", None)],
        };
        let arm64 = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        assert_eq!(
            select_platform(&idx, &arm64).unwrap().digest,
            "sha256:arm64"
        );
        let armv7 = Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
        };
        assert!(select_platform(&idx, &armv7).is_none());
        let bytes = serde_json::to_vec(&idx).unwrap();
        assert!(matches!(parse_document(&bytes), Ok(Document::Index(_))));
        let bad = br#"{"schemaVersion":2,"mediaType":"application/x-weird","layers":[]}"#;
        assert!(parse_document(bad).unwrap_err().contains("x-weird"));
        let badlayer = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:x","size":1},"layers":[{"mediaType":"application/x-tar-lz","digest":"sha256:y","size":1}]}"#;
        assert!(parse_document(badlayer).unwrap_err().contains("x-tar-lz"));
        let (c, diffs) = parse_config(br#"{"os":"linux","architecture":"amd64","config":{"Env":["A=1"],"Cmd":["sh"],"User":"1:2","StopSignal":"SIGQUIT","Volumes":{"/data":{}},"Labels":{"k":"v"}},"rootfs":{"type":"layers","diff_ids":["sha256:a"]}}"#).unwrap();
        assert_eq!(
            (
                c.env,
                c.cmd,
                c.user.as_str(),
                c.stop_signal.as_str(),
                c.volumes
            ),
            (
                vec!["A=1".to_string()],
                vec!["sh".to_string()],
                "1:2",
                "SIGQUIT",
                vec!["/data".to_string()]
            )
        );
        assert_eq!(diffs, vec!["sha256:a"]);
    }
}
