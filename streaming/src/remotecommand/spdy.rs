//! remotecommand over SPDY: the client opens one stream per role (`streamType` header:
//! error, stdin, stdout, stderr, resize); the server waits for exactly the expected set
//! (refusing unknown, duplicate or unexpected ones), then runs the session.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{error_payload, feed, read_chunk, run, session, Command};
use crate::backend::StreamingBackend;
use crate::protocol::{
    RcVersion, ResizeDecoder, HEADER_STREAM_TYPE, STREAM_ERROR, STREAM_RESIZE, STREAM_STDERR,
    STREAM_STDIN, STREAM_STDOUT,
};
use crate::spdy::{Connection, Incoming, Stream, StreamReader, StreamWriter};

#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

/// Serves one remotecommand session on an upgraded SPDY connection, then closes it.
pub async fn serve<B: StreamingBackend>(
    backend: &B,
    conn: Connection,
    mut incoming: Incoming,
    version: RcVersion,
    cmd: Command,
    creation_timeout: Duration,
) {
    let want_resize = cmd.tty() && version.resizes();
    let expected: Vec<&str> = [
        (true, STREAM_ERROR),
        (cmd.stdin(), STREAM_STDIN),
        (cmd.stdout(), STREAM_STDOUT),
        (cmd.stderr(), STREAM_STDERR),
        (want_resize, STREAM_RESIZE),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let streams =
        match tokio::time::timeout(creation_timeout, collect(&mut incoming, &expected)).await {
            Ok(Ok(s)) => s,
            Ok(Err(why)) => {
                tracing::info!(%why, "remotecommand session abandoned");
                conn.close().await;
                return;
            }
            Err(_) => {
                tracing::info!("timed out waiting for client to create streams");
                conn.close().await;
                return;
            }
        };
    // Later streams are refused.
    let refuser = tokio::spawn(async move {
        while let Some(s) = incoming.next().await {
            let _ = s.reject().await;
        }
    });

    let mut s = session(&cmd, want_resize);
    let gone = s.gone.clone();
    let watcher = {
        let conn = conn.clone();
        tokio::spawn(async move {
            conn.closed().await;
            let _ = gone.send(true);
        })
    };
    let Streams {
        error,
        stdin,
        stdout,
        stderr,
        resize,
    } = streams;
    // Only our writing half of the error stream is used; dropping its reader means stray
    // client data there is discarded instead of queueing up.
    let error = error.map(|e| e.writer);
    let mut keep = Vec::new();
    let mut inputs = Vec::new();
    if let (Some(st), Some(pipe)) = (stdin, s.stdin.take()) {
        keep.push(st.writer);
        inputs.push(tokio::spawn(pump_in(st.reader, pipe)));
    }
    if let (Some(st), Some(tx)) = (resize, s.resize.take()) {
        keep.push(st.writer);
        inputs.push(tokio::spawn(pump_resize(st.reader, tx)));
    }
    let mut outputs = Vec::new();
    for (st, pipe) in [(stdout, s.stdout.take()), (stderr, s.stderr.take())] {
        if let (Some(st), Some(pipe)) = (st, pipe) {
            outputs.push(tokio::spawn(pump_out(pipe, st.writer)));
        }
    }

    let status = run(backend, cmd, s.stdio).await;
    for o in outputs {
        let _ = o.await;
    }
    if let Some(mut err) = error {
        if let Some(bytes) = error_payload(&status, version.json_status()) {
            let _ = err.write(&bytes).await;
        }
        let _ = err.finish().await;
    }
    for mut w in keep {
        let _ = w.finish().await;
    }
    conn.close().await;
    for t in inputs {
        t.abort();
    }
    refuser.abort();
    watcher.abort();
}

async fn collect(incoming: &mut Incoming, expected: &[&str]) -> Result<Streams, String> {
    let mut got = Streams::default();
    let mut count = 0;
    while count < expected.len() {
        let Some(inc) = incoming.next().await else {
            return Err("connection closed before all streams were created".into());
        };
        let kind = inc
            .headers()
            .get(HEADER_STREAM_TYPE)
            .unwrap_or_default()
            .to_string();
        let slot = match kind.as_str() {
            STREAM_ERROR => &mut got.error,
            STREAM_STDIN => &mut got.stdin,
            STREAM_STDOUT => &mut got.stdout,
            STREAM_STDERR => &mut got.stderr,
            STREAM_RESIZE => &mut got.resize,
            _ => {
                tracing::info!(stream_type = %kind, "refusing stream of unknown type");
                let _ = inc.reject().await;
                continue;
            }
        };
        if slot.is_some() || !expected.contains(&kind.as_str()) {
            tracing::info!(stream_type = %kind, "refusing unexpected or duplicate stream");
            let _ = inc.reject().await;
            continue;
        }
        *slot = Some(inc.accept().await.map_err(|e| e.to_string())?);
        count += 1;
    }
    Ok(got)
}

async fn pump_in(mut from: StreamReader, mut pipe: tokio::io::DuplexStream) {
    while let Ok(Some(b)) = from.read().await {
        if !feed(&mut pipe, &b).await {
            return;
        }
    }
    let _ = pipe.shutdown().await;
}

async fn pump_out(mut pipe: tokio::io::DuplexStream, mut to: StreamWriter) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Some(n) = read_chunk(&mut pipe, &mut buf).await {
        if to.write(&buf[..n]).await.is_err() {
            // The client is gone: dropping `pipe` turns the backend's writes into BrokenPipe.
            return;
        }
    }
    let _ = to.finish().await;
}

async fn pump_resize(
    mut from: StreamReader,
    tx: tokio::sync::mpsc::Sender<crate::backend::TerminalSize>,
) {
    let mut dec = ResizeDecoder::default();
    while let Ok(Some(b)) = from.read().await {
        match dec.push(&b) {
            Ok(sizes) => {
                for size in sizes {
                    if tx.send(size).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::info!(error = %e, "ignoring malformed resize message"),
        }
    }
}
