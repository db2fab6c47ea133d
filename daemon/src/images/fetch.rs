//! Downloading blobs into the content store, and the pull pipeline of one layer.
//!
//! A layer that is neither a snapshot nor a blob yet is unpacked *while* it downloads: each
//! chunk of the compressed stream goes to the content store's ingest writer (which hashes
//! it) and through a bounded channel to a blocking thread that decompresses and unpacks it
//! into a staging directory (hashing the tar stream for the diff ID). Invariants:
//! - the unpacker sees the end of its stream only after the blob has been committed, i.e.
//!   its digest and size verified; a stream that stops early (download error, digest or
//!   size mismatch, aborted pull) is a read error for the unpacker, whose staging directory
//!   is then deleted — so a staged tree exists only for verified bytes with the right diff
//!   ID, and only then is it installed as a snapshot;
//! - the download error wins over the unpacker's: a corrupt download reports the digest
//!   mismatch, not the gzip error it caused downstream;
//! - a layer whose blob is already stored is unpacked from the stored blob, one whose
//!   snapshot exists is only downloaded (the image record references its blob).

use std::io::{self, Read, Write as _};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf as _, Bytes};
use futures::StreamExt as _;
use oci_client::client::BlobResponse;
use oci_client::errors::DigestError;
use oci_client::manifest::OciDescriptor;
use tokio::sync::{mpsc, Semaphore};

use super::commit::Extracted;
use super::manifest::Descriptor;
use super::pull::{chain, Ctx};
use super::{Error, Images, Inflight, LayerRecord};
use crate::content::{self, Ingester as _, LocalStore, Provider as _, Writer as _};
use crate::digest::Digest;
use crate::error::ErrorKind;

/// Chunks buffered between a download and its unpacker (each one read from the
/// connection, a few to a few dozen KiB).
const CHANNEL_CHUNKS: usize = 64;

/// What a download hands its unpacker.
enum Chunk {
    Data(Bytes),
    /// The blob is committed: everything sent was verified.
    End,
}

/// The unpacker's side of a streamed download: a blocking [`Read`] that reaches EOF only
/// after [`Chunk::End`]; a channel closed without it is an error.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    cur: Bytes,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.cur = b,
                Some(Chunk::End) => self.ended = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "layer download stopped before its end",
                    ))
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// Aborts a spawned task when dropped (a failed pull stops the others).
pub(super) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The digest and size a descriptor announces.
fn digest_and_size(ctx: &Ctx, desc: &Descriptor) -> Result<(Digest, u64), Error> {
    let d = Digest::parse(&desc.digest).map_err(|e| ctx.malformed(e.to_string()))?;
    let size = u64::try_from(desc.size)
        .map_err(|_| ctx.malformed(format!("blob {d} has negative size")))?;
    Ok((d, size))
}

/// Downloads one blob into the content store (once per digest), verifying while streaming.
pub(super) async fn fetch_blob(
    ctx: Ctx,
    desc: Descriptor,
    store: Arc<LocalStore>,
    inflight: Arc<Inflight>,
) -> Result<(), Error> {
    let (d, size) = digest_and_size(&ctx, &desc)?;
    let _once = inflight.lock(format!("blob/{d}")).await;
    if store.info(&d).is_ok_and(|i| i.size == size) {
        return Ok(());
    }
    download(&ctx, &desc, &d, size, &store, None).await
}

/// Downloads blob `d` into the store, sending every chunk to `sink` too (if it is still
/// listening) and, once the blob is committed, [`Chunk::End`].
async fn download(
    ctx: &Ctx,
    desc: &Descriptor,
    d: &Digest,
    size: u64,
    store: &LocalStore,
    mut sink: Option<mpsc::Sender<Chunk>>,
) -> Result<(), Error> {
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
    let r = ctx.reference(None, Some(d));
    // The content store verifies digest and size as it writes. Asking for the range
    // "0-" makes a registry that supports ranges answer 206, which oci-client passes
    // through unhashed instead of hashing the blob a second time (a 200 is still
    // verified by oci-client too). A zero-size blob has no satisfiable range.
    let mut s = if size > 0 {
        match ctx
            .client
            .pull_blob_stream_partial(&r, &od, 0, None)
            .await
            .map_err(|e| ctx.err(e))?
        {
            BlobResponse::Full(s) | BlobResponse::Partial(s) => s,
        }
    } else {
        ctx.client
            .pull_blob_stream(&r, &od)
            .await
            .map_err(|e| ctx.err(e))?
    };
    let mut w = store.writer().map_err(cerr)?;
    while let Some(chunk) = s.stream.next().await {
        match chunk {
            Ok(b) => {
                ctx.downloaded
                    .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
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
                let gone = match &sink {
                    Some(tx) => tx.send(Chunk::Data(b)).await.is_err(),
                    None => false,
                };
                if gone {
                    // The unpacker failed (its error is reported); the blob is still fetched.
                    sink = None;
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
    w.commit(d, Some(size)).map_err(cerr)?;
    if let Some(tx) = sink {
        let _ = tx.send(Chunk::End).await;
    }
    Ok(())
}

impl Images {
    /// Gets layer `layer` (descriptor `desc`) of a pull into the content store and staged
    /// for installation, streaming the download into the unpacker when neither exists.
    /// `limit` bounds the layers in flight; `unpackers` holds a permit per unpacking
    /// thread (see [`Images::spawn_extract`]).
    pub(super) async fn fetch_layer(
        &self,
        ctx: &Ctx,
        desc: &Descriptor,
        layer: &LayerRecord,
        limit: Arc<Semaphore>,
        unpackers: Arc<Semaphore>,
    ) -> Result<Extracted, Error> {
        let task_err = |e: tokio::task::JoinError| Error::Task(e.to_string());
        let started = Instant::now();
        let (guard, committed) = self.lock_layer(layer).await;
        let _permit = limit
            .acquire_owned()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        if committed {
            // The record still references the blob.
            let mut f = AbortOnDrop(tokio::spawn(fetch_blob(
                ctx.clone(),
                desc.clone(),
                self.content.clone(),
                self.inflight.clone(),
            )));
            (&mut f.0).await.map_err(task_err)??;
            return Ok(Extracted::new(guard, None));
        }
        let unpacker = unpackers
            .acquire_owned()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let (d, size) = digest_and_size(ctx, desc)?;
        let blob_lock = self.inflight.lock(format!("blob/{d}")).await;
        if self.content.info(&d).is_ok_and(|i| i.size == size) {
            drop(blob_lock);
            let staging = self
                .extract_stored(&ctx.image, layer, Some(unpacker))
                .await?;
            tracing::debug!(
                image = %ctx.image,
                layer = %layer.digest,
                unpacked_ms = started.elapsed().as_millis() as u64,
                "layer unpacked from the stored blob"
            );
            return Ok(Extracted::new(guard, Some(staging)));
        }
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let reader = ChannelReader {
            rx,
            cur: Bytes::new(),
            ended: false,
        };
        let unpack = self.spawn_extract(&ctx.image, layer, move || Ok(reader), Some(unpacker));
        let (dctx, ddesc, store) = (ctx.clone(), desc.clone(), self.content.clone());
        let dl = AbortOnDrop(tokio::spawn(async move {
            download(&dctx, &ddesc, &d, size, &store, Some(tx)).await
        }));
        let mut dl = dl;
        let fetched = (&mut dl.0).await.map_err(task_err);
        drop(blob_lock);
        let fetched_ms = started.elapsed().as_millis() as u64;
        // The unpacker stops soon after a failed download (its stream ends early); wait
        // for it either way so nothing writes after the pull returns.
        let unpacked = unpack.await.map_err(task_err);
        let staging = match (fetched, unpacked) {
            (Err(e) | Ok(Err(e)), _) => return Err(e),
            (Ok(Ok(())), u) => u??,
        };
        tracing::debug!(
            image = %ctx.image,
            layer = %layer.digest,
            fetched_ms,
            unpacked_ms = started.elapsed().as_millis() as u64,
            "layer fetched and unpacked"
        );
        Ok(Extracted::new(guard, Some(staging)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader over `chunks`, the sender already gone.
    fn reader(chunks: Vec<Chunk>) -> ChannelReader {
        let (tx, rx) = mpsc::channel(chunks.len() + 1);
        for c in chunks {
            tx.try_send(c).unwrap();
        }
        ChannelReader {
            rx,
            cur: Bytes::new(),
            ended: false,
        }
    }

    #[test]
    fn stream_ends_only_after_the_end_marker() {
        let mut r = reader(vec![
            Chunk::Data(Bytes::from_static(b"hello ")),
            Chunk::Data(Bytes::new()),
            Chunk::Data(Bytes::from_static(b"world")),
            Chunk::End,
        ]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
    }

    #[test]
    fn stream_closed_early_is_an_error() {
        let mut r = reader(vec![Chunk::Data(Bytes::from_static(b"part"))]);
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out, b"part");
    }
}
