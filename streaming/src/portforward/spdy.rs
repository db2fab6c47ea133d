//! portforward over SPDY (`portforward.k8s.io`): for every forwarded connection the client
//! opens an error stream and a data stream carrying the same `requestID` and `port` headers.
//! Pairs are matched by request id; a pair not completed within the creation timeout is
//! reset. Any number of pairs, on any ports, run concurrently on one connection, until the
//! client closes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{forward, read_pipe, write_pipe, PIPE_BUFFER};
use crate::backend::StreamingBackend;
use crate::protocol::{
    HEADER_PORT, HEADER_REQUEST_ID, HEADER_STREAM_TYPE, STREAM_DATA, STREAM_ERROR,
};
use crate::spdy::frame::rst;
use crate::spdy::{Connection, Incoming, Stream};

#[derive(Default)]
struct Pair {
    data: Option<Stream>,
    error: Option<Stream>,
    since: Option<Instant>,
}

/// Serves port-forwarding for `pod` on an upgraded SPDY connection until the client leaves.
pub async fn serve<B: StreamingBackend>(
    backend: Arc<B>,
    conn: Connection,
    mut incoming: Incoming,
    pod: String,
    creation_timeout: Duration,
) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(creation_timeout));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            inc = incoming.next() => {
                let Some(inc) = inc else { break };
                let headers = inc.headers().clone();
                let kind = headers.get(HEADER_STREAM_TYPE).unwrap_or_default().to_string();
                if kind != STREAM_DATA && kind != STREAM_ERROR {
                    tracing::info!(stream_type = %kind, "refusing port-forward stream of unknown type");
                    let _ = inc.reject().await;
                    continue;
                }
                // Old clients send no requestID: derive it from the stream ids as kubelet does
                // (the error stream is opened first, the data stream two ids later).
                let id = match headers.get(HEADER_REQUEST_ID) {
                    Some(id) if !id.is_empty() => id.to_string(),
                    _ if kind == STREAM_DATA => inc.id().saturating_sub(2).to_string(),
                    _ => inc.id().to_string(),
                };
                let pair = pairs.entry(id.clone()).or_default();
                let slot = if kind == STREAM_DATA { &mut pair.data } else { &mut pair.error };
                if slot.is_some() {
                    tracing::info!(request_id = %id, "refusing duplicate port-forward stream");
                    let _ = inc.reject().await;
                    continue;
                }
                match inc.accept().await {
                    Ok(s) => *slot = Some(s),
                    Err(_) => break,
                }
                pair.since.get_or_insert_with(Instant::now);
                if pair.data.is_some() && pair.error.is_some() {
                    if let Some(Pair { data: Some(data), error: Some(error), .. }) = pairs.remove(&id) {
                        tasks.spawn(run_pair(backend.clone(), pod.clone(), data, error));
                    }
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let stale: Vec<String> = pairs
                    .iter()
                    .filter(|(_, p)| p.since.is_some_and(|t| now - t > creation_timeout))
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in stale {
                    tracing::info!(request_id = %id, "timed out waiting for the other stream of a port-forward pair");
                    if let Some(p) = pairs.remove(&id) {
                        for mut s in [p.data, p.error].into_iter().flatten() {
                            let _ = s.writer.reset(rst::CANCEL).await;
                        }
                    }
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // The client is gone: in-flight pairs see their streams fail and wind down.
    while tasks.join_next().await.is_some() {}
    conn.close().await;
}

async fn run_pair<B: StreamingBackend>(backend: Arc<B>, pod: String, data: Stream, error: Stream) {
    let mut err_w = error.writer;
    drop(error.reader);
    let port = data
        .headers
        .get(HEADER_PORT)
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0);
    let Some(port) = port else {
        let raw = data.headers.get(HEADER_PORT).unwrap_or_default();
        let _ = err_w
            .write(format!("invalid port {raw:?}: must be an integer in 1..65535").as_bytes())
            .await;
        let _ = err_w.finish().await;
        let mut w = data.writer;
        let _ = w.finish().await;
        return;
    };
    let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
    let (mut rd, mut wr) = tokio::io::split(ours);
    let (mut from, mut to) = (data.reader, data.writer);
    let input = tokio::spawn(async move {
        while let Ok(Some(b)) = from.read().await {
            if !write_pipe(&mut wr, &b).await {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let output = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Some(n) = read_pipe(&mut rd, &mut buf).await {
            if to.write(&buf[..n]).await.is_err() {
                return;
            }
        }
        let _ = to.finish().await;
    });
    let failure = forward(&*backend, &pod, port, theirs).await;
    let _ = output.await;
    input.abort();
    if let Some(msg) = failure {
        tracing::info!(%msg, "port-forward failed");
        let _ = err_w.write(msg.as_bytes()).await;
    }
    let _ = err_w.finish().await;
}
