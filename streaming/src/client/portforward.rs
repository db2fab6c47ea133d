//! portforward client: over SPDY one connection carries any number of forwarded TCP
//! connections (an error stream and a data stream per request id, as kubectl does); over
//! WebSocket one socket carries one connection per port named in the request.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{connect_spdy, connect_websocket, ClientError};
use crate::protocol::{
    is_base64, ws_decode, ws_encode, WsFrame, HEADER_PORT, HEADER_REQUEST_ID, HEADER_STREAM_TYPE,
    PORTFORWARD_V1, REMOTECOMMAND_V4, STREAM_DATA, STREAM_ERROR,
};
use crate::spdy::{Connection, Headers, Stream};

/// A SPDY port-forwarding session.
pub struct PortForwarder {
    conn: Connection,
    next_request: AtomicU64,
}

/// One forwarded connection: its data stream and the text the server reports on its error
/// stream (empty when all went well).
pub struct ForwardedStream {
    pub data: Stream,
    pub error: JoinHandle<String>,
}

impl PortForwarder {
    /// Upgrades `url` (from `PortForward`) to SPDY with `portforward.k8s.io`.
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let (conn, _incoming, _protocol) = connect_spdy(url, &[PORTFORWARD_V1]).await?;
        Ok(Self {
            conn,
            next_request: AtomicU64::new(0),
        })
    }

    /// Opens the stream pair of a new connection to `port`.
    pub async fn open(&self, port: u16) -> Result<ForwardedStream, ClientError> {
        let id = self
            .next_request
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let headers = |kind: &str| {
            Headers::new()
                .with(HEADER_STREAM_TYPE, kind)
                .with(HEADER_PORT, port.to_string())
                .with(HEADER_REQUEST_ID, id.clone())
        };
        let mut error = self.conn.open_stream(headers(STREAM_ERROR)).await?;
        error.writer.finish().await?;
        let mut reader = error.reader;
        let error = tokio::spawn(async move {
            let bytes = reader.read_to_end(64 * 1024).await.unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        });
        let data = self.conn.open_stream(headers(STREAM_DATA)).await?;
        Ok(ForwardedStream { data, error })
    }

    /// Forwards `local` to `port` until the remote side ends; a message on the error
    /// stream becomes [`ClientError::Remote`].
    pub async fn forward<S>(&self, port: u16, local: S) -> Result<(), ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let fwd = self.open(port).await?;
        let (mut lr, mut lw) = tokio::io::split(local);
        let (mut rr, mut rw) = (fwd.data.reader, fwd.data.writer);
        let up = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match lr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if rw.write(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = rw.finish().await;
        });
        while let Ok(Some(b)) = rr.read().await {
            if lw.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = lw.shutdown().await;
        up.abort();
        let msg = fwd.error.await.unwrap_or_default();
        if msg.is_empty() {
            Ok(())
        } else {
            Err(ClientError::Remote(msg))
        }
    }

    /// Accepts local connections on `listener` and forwards each to `port` concurrently
    /// (what `port-forward LOCAL:REMOTE` does); returns when the SPDY session is gone.
    pub async fn serve_listener(
        self: std::sync::Arc<Self>,
        listener: tokio::net::TcpListener,
        port: u16,
    ) -> Result<(), ClientError> {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, peer) = accepted?;
                    let this = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = this.forward(port, tcp).await {
                            tracing::warn!(%peer, port, error = %e, "port-forward connection failed");
                        }
                    });
                }
                _ = self.conn.closed() => return Ok(()),
            }
        }
    }

    /// Ends the session.
    pub async fn close(&self) {
        self.conn.close().await;
    }
}

/// Forwards `locals[i]` to the i-th port of the request behind `url` over one WebSocket
/// (`v4.channel.k8s.io`); returns each port's error text (empty when fine). The session
/// ends when the server closes it, i.e. when every remote connection has ended.
pub async fn forward_websocket<S>(url: &str, locals: Vec<S>) -> Result<Vec<String>, ClientError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (ws, protocol) = connect_websocket(url, &[REMOTECOMMAND_V4]).await?;
    let b64 = is_base64(&protocol);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut writers = Vec::new();
    let mut ups = Vec::new();
    for (i, local) in locals.into_iter().enumerate() {
        let (mut lr, lw) = tokio::io::split(local);
        writers.push(Some(lw));
        let tx = tx.clone();
        let ch = (2 * i) as u8;
        ups.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = lr.read(&mut buf).await {
                if n == 0 || tx.send(ws_encode(ch, &buf[..n], b64)).await.is_err() {
                    break;
                }
            }
        }));
    }
    // `tx` lives until the server's close (dropping it closes our side of the socket).
    let n = writers.len();
    let mut prefixed = vec![false; 2 * n];
    let mut errors = vec![String::new(); n];
    let mut failure = None;
    while let Some(msg) = stream.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                failure = Some(ClientError::WebSocket(e.to_string()));
                break;
            }
        };
        match ws_decode(msg, b64) {
            Ok(WsFrame::Data(ch, mut data)) if (ch as usize) < 2 * n => {
                let ch = ch as usize;
                if !prefixed[ch] {
                    // Every channel opens with its port, two bytes little endian.
                    if data.len() < 2 {
                        failure = Some(ClientError::Protocol(format!(
                            "channel {ch} did not start with its port"
                        )));
                        break;
                    }
                    prefixed[ch] = true;
                    data = data.slice(2..);
                }
                if ch.is_multiple_of(2) {
                    if let Some(w) = writers[ch / 2].as_mut() {
                        if w.write_all(&data).await.is_err() {
                            writers[ch / 2] = None;
                        }
                    }
                } else {
                    errors[ch / 2].push_str(&String::from_utf8_lossy(&data));
                }
            }
            Ok(WsFrame::Close) => break,
            Ok(_) => {}
            Err(e) => {
                failure = Some(ClientError::Protocol(e.to_string()));
                break;
            }
        }
    }
    for mut w in writers.into_iter().flatten() {
        let _ = w.shutdown().await;
    }
    for u in ups {
        u.abort();
    }
    drop(tx);
    let _ = writer.await;
    match failure {
        Some(f) => Err(f),
        None => Ok(errors),
    }
}
