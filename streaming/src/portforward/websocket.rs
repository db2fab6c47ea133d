//! portforward over WebSocket (kubelet's wsstream protocol): the ports are fixed by the
//! request; port i uses channel 2i for data and 2i+1 for errors, and the server opens each
//! channel with the port number as two little-endian bytes. One WebSocket carries one
//! connection per port; it ends when every forward is done or the client leaves.

use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{forward, read_pipe, write_pipe, PIPE_BUFFER};
use crate::backend::StreamingBackend;
use crate::protocol::{is_base64, ws_decode, ws_encode, WsFrame};

/// Serves port-forwarding of `ports` for `pod` on an upgraded WebSocket.
pub async fn serve<B, S>(
    backend: Arc<B>,
    ws: WebSocketStream<S>,
    protocol: &str,
    pod: String,
    ports: Vec<u16>,
) where
    B: StreamingBackend,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let b64 = is_base64(protocol);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        let _ = sink.flush().await;
    });

    let mut inputs = Vec::new();
    let mut forwards = tokio::task::JoinSet::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let prefix = port.to_le_bytes();
        let _ = tx.send(ws_encode(data_ch, &prefix, b64)).await;
        let _ = tx.send(ws_encode(err_ch, &prefix, b64)).await;
        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        let (mut rd, wr) = tokio::io::split(ours);
        inputs.push(Some(wr));
        let tx = tx.clone();
        let backend = backend.clone();
        let pod = pod.clone();
        forwards.spawn(async move {
            let out_tx = tx.clone();
            let output = tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Some(n) = read_pipe(&mut rd, &mut buf).await {
                    if out_tx
                        .send(ws_encode(data_ch, &buf[..n], b64))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let failure = forward(&*backend, &pod, port, theirs).await;
            let _ = output.await;
            if let Some(msg) = failure {
                let _ = tx.send(ws_encode(err_ch, msg.as_bytes(), b64)).await;
            }
        });
    }

    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match ws_decode(msg, b64) {
                Ok(WsFrame::Data(ch, data)) if ch % 2 == 0 => {
                    let idx = (ch / 2) as usize;
                    if let Some(slot) = inputs.get_mut(idx) {
                        if let Some(wr) = slot.as_mut() {
                            if !write_pipe(wr, &data).await {
                                *slot = None;
                            }
                        }
                    }
                }
                Ok(WsFrame::Close) => break,
                Ok(_) => {}
                Err(e) => tracing::info!(error = %e, "ignoring malformed websocket message"),
            }
        }
        for mut wr in inputs.into_iter().flatten() {
            let _ = wr.shutdown().await;
        }
    });

    while forwards.join_next().await.is_some() {}
    drop(tx);
    let _ = writer.await;
    let abort = reader.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(5), reader)
        .await
        .is_err()
    {
        abort.abort();
    }
}
