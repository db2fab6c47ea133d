//! Pulling from an OCI distribution registry with oci-client: endpoint selection (mirrors,
//! plain HTTP), credentials, multi-arch resolution, parallel verified layer downloads
//! pipelined with in-order unpacking.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::hosts::{docker_config_credentials, Credentials, Endpoint};
use super::manifest::{self, Descriptor, Document, Manifest};
use super::{Error, Image, ImageRecord, ImageRef, Images, Inflight, LayerRecord};
use crate::content::{self, Ingester as _, LocalStore, Provider as _, Writer as _};
use crate::digest::{chain_ids, Digest};
use crate::error::{ErrorKind, Kind as _};

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
fn chain(e: &dyn std::error::Error) -> String {
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

#[derive(Clone)]
struct Ctx {
    image: String,
    endpoint: String,
    client: Client,
    repository: String,
    auth: RegistryAuth,
}

impl Ctx {
    fn err(&self, e: OciDistributionError) -> Error {
        Error::Registry {
            image: self.image.clone(),
            endpoint: self.endpoint.clone(),
            kind: classify(&e),
            message: chain(&e),
        }
    }

    fn malformed(&self, why: impl Into<String>) -> Error {
        Error::Malformed {
            image: self.image.clone(),
            why: why.into(),
        }
    }

    fn reference(&self, tag: Option<&str>, digest: Option<&Digest>) -> Reference {
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

/// Downloads one blob into the content store (once per digest), verifying while streaming.
async fn fetch_blob(
    ctx: Ctx,
    desc: Descriptor,
    store: Arc<LocalStore>,
    inflight: Arc<Inflight>,
) -> Result<(), Error> {
    let d = Digest::parse(&desc.digest).map_err(|e| ctx.malformed(e.to_string()))?;
    let size = u64::try_from(desc.size)
        .map_err(|_| ctx.malformed(format!("blob {d} has negative size")))?;
    let _once = inflight.lock(format!("blob/{d}")).await;
    if store.info(&d).is_ok_and(|i| i.size == size) {
        return Ok(());
    }
    let cerr = |source| Error::Content {
        image: ctx.image.clone(),
        digest: d.to_string(),
        source,
    };
    let od = OciDescriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest.clone(),
        size: desc.size,
        ..Default::default()
    };
    let mut s = ctx
        .client
        .pull_blob_stream(&ctx.reference(None, Some(&d)), &od)
        .await
        .map_err(|e| ctx.err(e))?;
    let mut w = store.writer().map_err(cerr)?;
    while let Some(chunk) = s.stream.next().await {
        match chunk {
            Ok(b) => {
                w.write_all(&b).map_err(|source| {
                    cerr(content::Error::Io {
                        op: "write",
                        path: "ingest".into(),
                        source,
                    })
                })?;
                if w.written() > size {
                    return Err(cerr(content::Error::SizeMismatch {
                        digest: d.clone(),
                        expected: size,
                        actual: w.written(),
                    }));
                }
            }
            Err(e) => {
                if let Some(DigestError::VerificationError { actual, .. }) =
                    e.get_ref().and_then(|i| i.downcast_ref::<DigestError>())
                {
                    let actual = Digest::parse(actual).unwrap_or_else(|_| Digest::of(b""));
                    return Err(cerr(content::Error::DigestMismatch {
                        expected: d.clone(),
                        actual,
                    }));
                }
                return Err(Error::Registry {
                    image: ctx.image.clone(),
                    endpoint: ctx.endpoint.clone(),
                    kind: ErrorKind::Unavailable,
                    message: format!("download {d}: {}", chain(&e)),
                });
            }
        }
    }
    w.commit(&d, Some(size)).map_err(cerr)?;
    Ok(())
}

/// Aborts a spawned download when dropped (a failed pull stops the others).
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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

    fn auth_for(
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
            if let Ok(json) = std::fs::read(path) {
                for host in [ep.host.as_str(), r.registry.as_str()] {
                    if let Some(c) = docker_config_credentials(&json, host).map_err(&bad)? {
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
            auth: self.auth_for(r, ep, creds)?,
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
        fetch_blob(
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
        let mut downloads: Vec<AbortOnDrop> = Vec::new();
        for l in &m.layers {
            let (ctx, desc, store, inflight, limit) = (
                ctx.clone(),
                l.clone(),
                self.content.clone(),
                self.inflight.clone(),
                limit.clone(),
            );
            downloads.push(AbortOnDrop(tokio::spawn(async move {
                let _permit = limit
                    .acquire_owned()
                    .await
                    .map_err(|e| Error::Task(e.to_string()))?;
                fetch_blob(ctx, desc, store, inflight).await
            })));
        }
        // Extract layers in parallel as their downloads finish (each into its own staging
        // directory), install them bottom-up.
        let started = std::time::Instant::now();
        let extract_limit = Arc::new(tokio::sync::Semaphore::new(3));
        let mut extracted: futures::stream::FuturesOrdered<_> = downloads
            .into_iter()
            .zip(&layers)
            .map(|(dl, layer)| {
                let limit = extract_limit.clone();
                async move {
                    let mut dl = dl;
                    (&mut dl.0)
                        .await
                        .map_err(|e| Error::Task(e.to_string()))??;
                    let fetched = started.elapsed();
                    let _permit = limit
                        .acquire_owned()
                        .await
                        .map_err(|e| Error::Task(e.to_string()))?;
                    let x = self.extract_layer(&ctx.image, layer).await?;
                    Ok::<_, Error>((x, fetched, started.elapsed()))
                }
            })
            .collect();
        let mut parent: Option<String> = None;
        let mut i = 0;
        while let Some(r) = extracted.next().await {
            let (x, fetched, unpacked) = r?;
            let layer = &layers[i];
            self.install_layer(&ctx.image, layer, parent.as_deref(), x)
                .await?;
            tracing::debug!(
                image = %ctx.image,
                layer = i,
                fetched_ms = fetched.as_millis() as u64,
                unpacked_ms = unpacked.as_millis() as u64,
                installed_ms = started.elapsed().as_millis() as u64,
                "layer ready"
            );
            parent = Some(layer.chain_id.clone());
            i += 1;
        }
        Ok(rec)
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
