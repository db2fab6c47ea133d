//! Pulling from an OCI distribution registry with oci-client: endpoint selection (mirrors,
//! plain HTTP), credentials, multi-arch resolution; layers are downloaded and unpacked at
//! once, each streamed into its unpacker (`fetch.rs`), and installed bottom-up.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::hosts::{docker_config_credentials, Credentials, Endpoint};
use super::manifest::{self, Document, Manifest};
use super::{fetch, Error, Image, ImageRecord, ImageRef, Images, LayerRecord};
use crate::content::{self, Ingester as _, LocalStore, Provider as _, Writer as _};
use crate::digest::{chain_ids, Digest};
use crate::error::{ErrorKind, Kind as _};

/// Size of the semaphore that tracks unpacking threads (not a limit: layers in flight are
/// bounded by `max_concurrent_downloads`).
const UNPACKERS: u32 = 1 << 16;

/// Installs rustls' ring crypto provider for oci-client's HTTPS (once per process; any
/// provider installed earlier is kept).
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another component may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn classify(e: &OciDistributionError) -> ErrorKind {
    use OciDistributionError as E;
    match e {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => ErrorKind::Unauthenticated,
        E::RegistryError { envelope, .. } => match envelope.errors.first().map(|e| &e.code) {
            Some(
                OciErrorCode::BlobUnknown
                | OciErrorCode::ManifestUnknown
                | OciErrorCode::ManifestBlobUnknown
                | OciErrorCode::NameUnknown
                | OciErrorCode::NotFound,
            ) => ErrorKind::NotFound,
            Some(OciErrorCode::Unauthorized) => ErrorKind::Unauthenticated,
            Some(OciErrorCode::Denied) => ErrorKind::PermissionDenied,
            Some(OciErrorCode::Toomanyrequests) => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidArgument,
        },
        E::ServerError { code, .. } => match code {
            404 => ErrorKind::NotFound,
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::PermissionDenied,
            429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        },
        E::ImageManifestNotFoundError(_) => ErrorKind::NotFound,
        E::RequestError(_) | E::IoError(_) => ErrorKind::Unavailable,
        E::DigestError(_) => ErrorKind::DataLoss,
        E::ManifestParsingError(_)
        | E::SpecViolationError(_)
        | E::UnsupportedMediaTypeError(_)
        | E::UnsupportedSchemaVersionError(_)
        | E::VersionedParsingError(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    }
}

/// Renders an error with its sources (oci-client wraps reqwest, which wraps hyper).
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// One pull from one endpoint.
#[derive(Clone)]
pub(super) struct Ctx {
    pub image: String,
    pub endpoint: String,
    pub client: Client,
    repository: String,
    auth: RegistryAuth,
    /// The store's count of bytes downloaded (see [`Images::bytes_downloaded`]).
    pub downloaded: Arc<std::sync::atomic::AtomicU64>,
}

impl Ctx {
    pub fn err(&self, e: OciDistributionError) -> Error {
        Error::Registry {
            image: self.image.clone(),
            endpoint: self.endpoint.clone(),
            kind: classify(&e),
            message: chain(&e),
        }
    }

    pub fn malformed(&self, why: impl Into<String>) -> Error {
        Error::Malformed {
            image: self.image.clone(),
            why: why.into(),
        }
    }

    pub fn reference(&self, tag: Option<&str>, digest: Option<&Digest>) -> Reference {
        match (digest, tag) {
            (Some(d), _) => Reference::with_digest(
                self.endpoint.clone(),
                self.repository.clone(),
                d.to_string(),
            ),
            (None, t) => Reference::with_tag(
                self.endpoint.clone(),
                self.repository.clone(),
                t.unwrap_or("latest").into(),
            ),
        }
    }

    /// Fetches a manifest or index, verifying its digest when one is expected.
    async fn manifest(
        &self,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<(Vec<u8>, Digest), Error> {
        let r = self.reference(tag, digest);
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&r, &self.auth, manifest::ACCEPT)
            .await
            .map_err(|e| self.err(e))?;
        self.downloaded
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let actual = Digest::of(&bytes);
        if let Some(want) = digest {
            if *want != actual {
                return Err(Error::Content {
                    image: self.image.clone(),
                    digest: want.to_string(),
                    source: content::Error::DigestMismatch {
                        expected: want.clone(),
                        actual,
                    },
                });
            }
        }
        Ok((bytes.to_vec(), actual))
    }
}

fn store_bytes(store: &LocalStore, image: &str, d: &Digest, bytes: &[u8]) -> Result<(), Error> {
    let cerr = |source| Error::Content {
        image: image.into(),
        digest: d.to_string(),
        source,
    };
    if store.info(d).is_ok() {
        return Ok(());
    }
    let mut w = store.writer().map_err(cerr)?;
    w.write_all(bytes).map_err(|source| {
        cerr(content::Error::Io {
            op: "write",
            path: "ingest".into(),
            source,
        })
    })?;
    w.commit(d, Some(bytes.len() as u64)).map_err(cerr)?;
    Ok(())
}

/// Pulls `spec` in a task of its own, so that a panic inside the registry client cannot
/// take the caller down with it: oci-client `unwrap`s the parse of a bearer token a
/// registry hands out into an HTTP header, and a hostile registry's token with a line
/// break panicked the gRPC worker (the client got a reset stream, not an answer). The
/// panic becomes a Registry error (Unavailable) naming what happened.
pub async fn pull_guarded(
    images: &std::sync::Arc<Images>,
    spec: &str,
    creds: Option<&Credentials>,
) -> Result<Image, Error> {
    let (me, owned, creds) = (images.clone(), spec.to_string(), creds.cloned());
    let task = tokio::spawn(async move { me.pull(&owned, creds.as_ref()).await });
    match task.await {
        Ok(r) => r,
        Err(e) => {
            let why = if e.is_panic() {
                let p = e.into_panic();
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("the registry client failed on the registry's answer (an invalid token or header?): {msg}")
            } else {
                "the pull was cancelled".to_string()
            };
            images.clean_after_failure().await;
            Err(Error::Registry {
                image: spec.to_string(),
                endpoint: ImageRef::parse(spec)
                    .map(|r| r.registry)
                    .unwrap_or_default(),
                kind: ErrorKind::Unavailable,
                message: why,
            })
        }
    }
}

impl Images {
    /// Pulls `spec` and returns the image. `creds` override the docker config.json.
    pub async fn pull(&self, spec: &str, creds: Option<&Credentials>) -> Result<Image, Error> {
        install_crypto();
        let r = ImageRef::parse(spec)?;
        let result = self.pull_locked(&r, creds).await;
        if result.is_err() {
            self.clean_after_failure().await;
        }
        result
    }

    async fn pull_locked(&self, r: &ImageRef, creds: Option<&Credentials>) -> Result<Image, Error> {
        let name = r.name();
        let _gc = self.gc.read().await;
        let _once = self.inflight.lock(format!("pull/{name}")).await;
        if r.digest.is_some() {
            if let Ok(img) = self.get(&name) {
                return Ok(img);
            }
        }
        let endpoints = self.registry.endpoints(&r.registry);
        let mut last = None;
        for ep in &endpoints {
            match self.pull_from(r, ep, creds).await {
                Ok(img) => return Ok(img),
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    tracing::warn!(image = %name, endpoint = %ep.host, error = %e, "endpoint unavailable, trying next");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotFound(name)))
    }

    async fn auth_for(
        &self,
        r: &ImageRef,
        ep: &Endpoint,
        creds: Option<&Credentials>,
    ) -> Result<RegistryAuth, Error> {
        let bad = |why: String| Error::Registry {
            image: r.name(),
            endpoint: ep.host.clone(),
            kind: ErrorKind::InvalidArgument,
            message: why,
        };
        if let Some(c) = creds.filter(|c| !c.is_empty()) {
            return c.to_auth().map_err(bad);
        }
        if let Some(path) = &self.registry.docker_config {
            if let Ok(json) = tokio::fs::read(path).await {
                let hosts = [ep.host.as_str(), r.registry.as_str()];
                // The registry itself once when it is the endpoint (a helper runs per lookup).
                let n = if hosts[0] == hosts[1] { 1 } else { 2 };
                for host in &hosts[..n] {
                    if let Some(c) = docker_config_credentials(&json, host).await.map_err(&bad)? {
                        return c.to_auth().map_err(bad);
                    }
                }
            }
        }
        Ok(RegistryAuth::Anonymous)
    }

    async fn pull_from(
        &self,
        r: &ImageRef,
        ep: &Endpoint,
        creds: Option<&Credentials>,
    ) -> Result<Image, Error> {
        let image = r.name();
        let config = ClientConfig {
            protocol: if ep.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        };
        let ctx = Ctx {
            image: image.clone(),
            endpoint: ep.host.clone(),
            client: Client::new(config),
            repository: r.repository.clone(),
            auth: self.auth_for(r, ep, creds).await?,
            downloaded: self.downloaded.clone(),
        };
        let (bytes, target) = ctx.manifest(r.tag.as_deref(), r.digest.as_ref()).await?;
        let mut blobs = vec![target.clone()];
        let mut docs = vec![(target.clone(), bytes.clone())];
        let (manifest, manifest_digest) = match manifest::parse_document(&bytes)
            .map_err(|w| ctx.malformed(w))?
        {
            Document::Manifest(m) => (m, target.clone()),
            Document::Index(idx) => {
                let want = manifest::host_platform();
                let desc =
                    manifest::select_platform(&idx, &want).ok_or_else(|| Error::NoPlatform {
                        image: image.clone(),
                        platform: format!(
                            "{}/{}{}",
                            want.os,
                            want.architecture,
                            want.variant
                                .as_deref()
                                .map(|v| format!("/{v}"))
                                .unwrap_or_default()
                        ),
                    })?;
                let d = Digest::parse(&desc.digest).map_err(|e| ctx.malformed(e.to_string()))?;
                let (mb, md) = ctx.manifest(None, Some(&d)).await?;
                let Document::Manifest(m) =
                    manifest::parse_document(&mb).map_err(|w| ctx.malformed(w))?
                else {
                    return Err(ctx.malformed(format!("index entry {d} is not an image manifest")));
                };
                blobs.push(md.clone());
                docs.push((md.clone(), mb));
                (m, md)
            }
        };
        for (d, b) in &docs {
            store_bytes(&self.content, &image, d, b)?;
        }
        fetch::fetch_blob(
            ctx.clone(),
            manifest.config.clone(),
            self.content.clone(),
            self.inflight.clone(),
        )
        .await?;
        let rec = self
            .layers_and_record(&ctx, r, &manifest, &manifest_digest, &target, blobs)
            .await?;
        let mut names = vec![r.with_digest(&target).name()];
        if r.digest.is_none() {
            names.push(image);
        }
        self.record(rec, &names)
    }

    async fn layers_and_record(
        &self,
        ctx: &Ctx,
        _r: &ImageRef,
        m: &Manifest,
        manifest_digest: &Digest,
        target: &Digest,
        mut blobs: Vec<Digest>,
    ) -> Result<ImageRecord, Error> {
        let (rec, layers) = self.plan(&ctx.image, m, manifest_digest, target, &mut blobs)?;
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.registry.max_concurrent_downloads.unwrap_or(4).max(1),
        ));
        // One permit per unpacking thread: after a failure, taking them all waits for the
        // threads of the layers dropped below to stop (their streams end early).
        let unpackers = Arc::new(tokio::sync::Semaphore::new(UNPACKERS as usize));
        let result = async {
            // Every layer downloads and unpacks at once (bounded by `limit`), each into
            // its own staging directory; they are installed bottom-up.
            let started = std::time::Instant::now();
            let mut staged: futures::stream::FuturesOrdered<_> = m
                .layers
                .iter()
                .zip(&layers)
                .map(|(desc, layer)| {
                    self.fetch_layer(ctx, desc, layer, limit.clone(), unpackers.clone())
                })
                .collect();
            let mut parent: Option<String> = None;
            let mut i = 0;
            while let Some(x) = staged.next().await {
                let layer = &layers[i];
                self.install_layer(&ctx.image, layer, parent.as_deref(), x?)
                    .await?;
                tracing::debug!(
                    image = %ctx.image,
                    layer = i,
                    installed_ms = started.elapsed().as_millis() as u64,
                    "layer ready"
                );
                parent = Some(layer.chain_id.clone());
                i += 1;
            }
            Ok::<_, Error>(())
        }
        .await;
        if result.is_err() {
            let _ = unpackers.acquire_many(UNPACKERS).await;
        }
        result.map(|()| rec)
    }

    /// Reads the (stored) config and builds the image record and layer list.
    pub(super) fn plan(
        &self,
        image: &str,
        m: &Manifest,
        manifest_digest: &Digest,
        target: &Digest,
        blobs: &mut Vec<Digest>,
    ) -> Result<(ImageRecord, Vec<LayerRecord>), Error> {
        let malformed = |why: String| Error::Malformed {
            image: image.into(),
            why,
        };
        let config_digest =
            Digest::parse(&m.config.digest).map_err(|e| malformed(e.to_string()))?;
        let config_bytes =
            self.content
                .read_all(&config_digest)
                .map_err(|source| Error::Content {
                    image: image.into(),
                    digest: config_digest.to_string(),
                    source,
                })?;
        let (config, diff_ids) = manifest::parse_config(&config_bytes).map_err(malformed)?;
        if diff_ids.len() != m.layers.len() {
            return Err(malformed(format!(
                "config lists {} diff IDs for {} layers",
                diff_ids.len(),
                m.layers.len()
            )));
        }
        let diff_ids = diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| malformed(e.to_string()))?;
        let chains = chain_ids(&diff_ids);
        let mut layers = Vec::new();
        blobs.push(config_digest.clone());
        let mut size = 0u64;
        for ((l, diff), chain) in m.layers.iter().zip(&diff_ids).zip(&chains) {
            let d = Digest::parse(&l.digest).map_err(|e| malformed(e.to_string()))?;
            blobs.push(d);
            size += u64::try_from(l.size)
                .map_err(|_| malformed(format!("layer {} has negative size", l.digest)))?;
            layers.push(LayerRecord {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size as u64,
                diff_id: diff.to_string(),
                chain_id: chain.to_string(),
            });
        }
        size += config_bytes.len() as u64;
        let rec = ImageRecord {
            id: config_digest.to_string(),
            manifest_digest: manifest_digest.to_string(),
            target_digest: target.to_string(),
            layers: layers.clone(),
            blobs: blobs.iter().map(ToString::to_string).collect(),
            size,
            config,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        Ok((rec, layers))
    }
}
