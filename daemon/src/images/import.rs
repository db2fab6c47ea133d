//! Offline import of image archives into the store, usable afterwards as if pulled:
//! - OCI image layout tarballs (`oci-layout`, `index.json`, `blobs/sha256/…`), as written by
//!   `ctr export`, `skopeo copy oci-archive:`, `docker save` (Docker ≥ 25);
//! - `docker save` tarballs (`manifest.json` with `Config`, `RepoTags`, `Layers`), for
//!   which an OCI manifest is synthesised, as containerd does.
//!
//! The archive (optionally gzip/zstd compressed) is read once: every blob is streamed into
//! the content store and verified against its `blobs/sha256/<hex>` name. Names come from
//! `io.containerd.image.name` / `org.opencontainers.image.ref.name` annotations or
//! `RepoTags`; `name` (if given) is used for images that have none, or as the repository
//! for a bare tag.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::manifest::{self, Descriptor, Document, Manifest};
use super::{Error, Image, ImageRef, Images};
use crate::content::{Ingester as _, LocalStore, Provider as _, Writer as _};
use crate::digest::Digest;
use crate::snapshots::unpack;

struct Scanned {
    /// Archive path → digest of the stored file.
    files: HashMap<String, (Digest, u64)>,
    index: Option<Vec<u8>>,
    docker_manifest: Option<Vec<u8>>,
}

fn clean(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

fn scan(store: &LocalStore, path: &Path) -> Result<Scanned, Error> {
    let bad = |why: String| Error::Import {
        path: path.into(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        op: "open",
        path: path.into(),
        source,
    })?;
    let reader =
        unpack::decompress(std::io::BufReader::new(file)).map_err(|e| bad(format!("read: {e}")))?;
    let mut ar = tar::Archive::new(reader);
    let mut out = Scanned {
        files: HashMap::new(),
        index: None,
        docker_manifest: None,
    };
    for entry in ar
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| {
            bad(format!(
                "not a valid tar archive: {}",
                e.to_string().lines().next().unwrap_or_default()
            ))
        })?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let name = clean(
            &entry
                .path()
                .map_err(|e| bad(format!("entry name: {e}")))?
                .to_string_lossy(),
        );
        match name.as_str() {
            "index.json" | "manifest.json" => {
                let mut buf = Vec::new();
                entry
                    .read_to_end(&mut buf)
                    .map_err(|e| bad(format!("read {name}: {e}")))?;
                if name == "index.json" {
                    out.index = Some(buf);
                } else {
                    out.docker_manifest = Some(buf);
                }
                continue;
            }
            "oci-layout" | "repositories" => continue,
            n if n.ends_with("/json") || n.ends_with("/VERSION") => continue,
            _ => {}
        }
        let mut w = store.writer().map_err(|source| Error::Content {
            image: String::new(),
            digest: name.clone(),
            source,
        })?;
        std::io::copy(&mut entry, &mut w).map_err(|e| bad(format!("read {name}: {e}")))?;
        let size = w.written();
        let expected = match name.strip_prefix("blobs/sha256/") {
            Some(hex) => {
                Digest::parse(&format!("sha256:{hex}")).map_err(|e| bad(format!("{name}: {e}")))?
            }
            // A docker save file named by path: its digest is what was written.
            None => w.digest(),
        };
        w.commit(&expected, Some(size))
            .map_err(|source| Error::Content {
                image: String::new(),
                digest: name.clone(),
                source,
            })?;
        out.files.insert(name, (expected, size));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What to import: a manifest, its digest, the resolved target digest and names.
struct Target {
    manifest: Manifest,
    manifest_digest: Digest,
    target: Digest,
    names: Vec<String>,
}

impl Images {
    /// Imports every image of the archive at `path`; `name` names images that carry none.
    pub async fn import(&self, path: &Path, name: Option<&str>) -> Result<Vec<Image>, Error> {
        let result = self.import_locked(path, name).await;
        if result.is_err() {
            self.clean_after_failure().await;
        }
        result
    }

    async fn import_locked(&self, path: &Path, name: Option<&str>) -> Result<Vec<Image>, Error> {
        let _gc = self.gc.read().await;
        let store: Arc<LocalStore> = self.content.clone();
        let p: PathBuf = path.to_path_buf();
        let scanned = tokio::task::spawn_blocking(move || scan(&store, &p))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        let targets = self.targets(path, &scanned, name)?;
        if targets.is_empty() {
            return Err(Error::Import {
                path: path.into(),
                why: "no images in archive".into(),
            });
        }
        let mut out = Vec::new();
        for t in targets {
            let image = t
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| t.manifest_digest.to_string());
            let mut blobs = vec![t.target.clone()];
            if t.manifest_digest != t.target {
                blobs.push(t.manifest_digest.clone());
            }
            let (rec, layers) = self.plan(
                &image,
                &t.manifest,
                &t.manifest_digest,
                &t.target,
                &mut blobs,
            )?;
            for l in &layers {
                let d = Digest::parse(&l.digest).map_err(|e| Error::Malformed {
                    image: image.clone(),
                    why: e.to_string(),
                })?;
                self.content.info(&d).map_err(|source| Error::Content {
                    image: image.clone(),
                    digest: l.digest.clone(),
                    source,
                })?;
            }
            let mut parent: Option<String> = None;
            for l in &layers {
                self.ensure_snapshot(&image, l, parent.as_deref()).await?;
                parent = Some(l.chain_id.clone());
            }
            out.push(self.record(rec, &t.names)?);
        }
        Ok(out)
    }

    fn targets(&self, path: &Path, s: &Scanned, name: Option<&str>) -> Result<Vec<Target>, Error> {
        let bad = |why: String| Error::Import {
            path: path.into(),
            why,
        };
        let fallback = |tag: Option<&str>| -> Result<Vec<String>, Error> {
            let Some(n) = name else { return Ok(Vec::new()) };
            let r = ImageRef::parse(n)?;
            Ok(vec![match tag {
                Some(t) if r.digest.is_none() => format!("{}:{t}", r.repo()),
                _ => r.name(),
            }])
        };
        if let Some(index) = &s.index {
            let idx: manifest::Index =
                serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
            let mut out = Vec::new();
            for desc in &idx.manifests {
                let ann = desc.annotations.clone().unwrap_or_default();
                let mut names = Vec::new();
                if let Some(n) = ann.get("io.containerd.image.name") {
                    names.push(ImageRef::parse(n)?.name());
                } else if let Some(n) = ann.get("org.opencontainers.image.ref.name") {
                    match ImageRef::parse(n) {
                        Ok(r) if n.contains('/') || n.contains(':') || n.contains('@') => {
                            names.push(r.name())
                        }
                        _ => names = fallback(Some(n))?,
                    }
                } else {
                    names = fallback(None)?;
                }
                if names.is_empty() {
                    return Err(bad(format!("image {} has no name; give one", desc.digest)));
                }
                let target = Digest::parse(&desc.digest).map_err(|e| bad(e.to_string()))?;
                let (manifest, manifest_digest) = self.resolve_stored(path, &target)?;
                for n in names.clone() {
                    if let Ok(r) = ImageRef::parse(&n) {
                        names.push(r.with_digest(&target).name());
                    }
                }
                names.dedup();
                out.push(Target {
                    manifest,
                    manifest_digest,
                    target,
                    names,
                });
            }
            return Ok(out);
        }
        let Some(dm) = &s.docker_manifest else {
            return Err(bad("neither index.json nor manifest.json found: not an OCI layout or docker save archive".into()));
        };
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(dm).map_err(|e| bad(format!("manifest.json: {e}")))?;
        let file = |p: &str| {
            s.files
                .get(&clean(p))
                .cloned()
                .ok_or_else(|| bad(format!("{p} listed in manifest.json is missing")))
        };
        let mut out = Vec::new();
        for e in entries {
            let (cd, cs) = file(&e.config)?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let (ld, ls) = file(l)?;
                let mut head = [0u8; 4];
                let n = self
                    .content
                    .open(&ld)
                    .and_then(|mut f| {
                        f.read(&mut head)
                            .map_err(|source| crate::content::Error::Io {
                                op: "read",
                                path: l.into(),
                                source,
                            })
                    })
                    .unwrap_or(0);
                let mt = if head[..n].starts_with(&[0x1f, 0x8b]) {
                    manifest::OCI_LAYER_GZIP
                } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    "application/vnd.oci.image.layer.v1.tar+zstd"
                } else {
                    manifest::OCI_LAYER_TAR
                };
                layers.push(Descriptor {
                    media_type: mt.into(),
                    digest: ld.to_string(),
                    size: ls as i64,
                    platform: None,
                    annotations: None,
                });
            }
            let m = Manifest {
                schema_version: 2,
                media_type: Some(manifest::OCI_MANIFEST.into()),
                config: Descriptor {
                    media_type: manifest::OCI_CONFIG.into(),
                    digest: cd.to_string(),
                    size: cs as i64,
                    platform: None,
                    annotations: None,
                },
                layers,
            };
            let bytes = serde_json::to_vec(&m).map_err(|e| bad(e.to_string()))?;
            let md = Digest::of(&bytes);
            let image = md.to_string();
            let mut w = self.content.writer().map_err(|source| Error::Content {
                image: image.clone(),
                digest: image.clone(),
                source,
            })?;
            std::io::Write::write_all(&mut w, &bytes).map_err(|source| Error::Io {
                op: "write",
                path: "ingest".into(),
                source,
            })?;
            w.commit(&md, None).map_err(|source| Error::Content {
                image: image.clone(),
                digest: image.clone(),
                source,
            })?;
            let mut names = Vec::new();
            for t in e.repo_tags.unwrap_or_default() {
                names.push(ImageRef::parse(&t)?.name());
            }
            if names.is_empty() {
                names = fallback(None)?;
            }
            if names.is_empty() {
                return Err(bad(format!(
                    "image {} has no RepoTags; give a name",
                    e.config
                )));
            }
            out.push(Target {
                manifest: m,
                manifest_digest: md.clone(),
                target: md,
                names,
            });
        }
        Ok(out)
    }

    /// Reads a stored manifest or index (resolving the host platform) to a manifest.
    fn resolve_stored(&self, path: &Path, d: &Digest) -> Result<(Manifest, Digest), Error> {
        let bad = |why: String| Error::Import {
            path: path.into(),
            why,
        };
        let bytes = self.content.read_all(d).map_err(|source| Error::Content {
            image: d.to_string(),
            digest: d.to_string(),
            source,
        })?;
        match manifest::parse_document(&bytes).map_err(|w| bad(format!("{d}: {w}")))? {
            Document::Manifest(m) => Ok((m, d.clone())),
            Document::Index(idx) => {
                let want = manifest::host_platform();
                let desc = manifest::select_platform(&idx, &want).ok_or_else(|| {
                    bad(format!(
                        "{d}: no manifest for {}/{}",
                        want.os, want.architecture
                    ))
                })?;
                let md = Digest::parse(&desc.digest).map_err(|e| bad(e.to_string()))?;
                let (m, _) = self.resolve_stored(path, &md)?;
                Ok((m, md))
            }
        }
    }
}
