//! remotecommand over WebSocket (k8s wsstream channels): 0 stdin, 1 stdout, 2 stderr,
//! 3 error, 4 resize; v5 adds the close signal on channel 255. As kubelet does, the server
//! first sends an empty message on the lowest writable channel to say the session is up.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{error_payload, feed, read_chunk, run, session, Command};
use crate::backend::StreamingBackend;
use crate::protocol::{
    is_base64, ws_decode, ws_encode, RcVersion, ResizeDecoder, WsFrame, CH_CLOSE, CH_ERROR,
    CH_RESIZE, CH_STDERR, CH_STDIN, CH_STDOUT,
};

/// How long to wait for the client's close handshake before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves one remotecommand session on an upgraded WebSocket, then closes it.
pub async fn serve<B, S>(backend: &B, ws: WebSocketStream<S>, protocol: &str, cmd: Command)
where
    B: StreamingBackend,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let version = RcVersion::of(protocol);
    let b64 = is_base64(protocol);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() {
                return;
            }
            if close {
                break;
            }
        }
        let _ = sink.flush().await;
    });

    let mut s = session(&cmd, true);
    let first = if cmd.stdout() {
        CH_STDOUT
    } else if cmd.stderr() {
        CH_STDERR
    } else {
        CH_ERROR
    };
    let _ = tx.send(ws_encode(first, &[], b64)).await;

    let mut stdin = s.stdin.take();
    let resize = s.resize.take();
    let gone = s.gone.clone();
    let reader = tokio::spawn(async move {
        let mut dec = ResizeDecoder::default();
        while let Some(Ok(msg)) = stream.next().await {
            match ws_decode(msg, b64) {
                Ok(WsFrame::Data(CH_STDIN, data)) => {
                    if let Some(pipe) = stdin.as_mut() {
                        if !feed(pipe, &data).await {
                            stdin = None;
                        }
                    }
                }
                Ok(WsFrame::Data(CH_RESIZE, data)) => match dec.push(&data) {
                    Ok(sizes) => {
                        if let Some(tx) = &resize {
                            for size in sizes {
                                let _ = tx.send(size).await;
                            }
                        }
                    }
                    Err(e) => tracing::info!(error = %e, "ignoring malformed resize message"),
                },
                Ok(WsFrame::Data(CH_CLOSE, data)) if version >= RcVersion::V5 => {
                    if data.first() == Some(&CH_STDIN) {
                        if let Some(mut pipe) = stdin.take() {
                            let _ = pipe.shutdown().await;
                        }
                    }
                }
                Ok(WsFrame::Close) => break,
                Ok(_) => {}
                Err(e) => tracing::info!(error = %e, "ignoring malformed websocket message"),
            }
        }
        if let Some(mut pipe) = stdin.take() {
            let _ = pipe.shutdown().await;
        }
        let _ = gone.send(true);
    });

    let mut outputs = Vec::new();
    for (ch, pipe) in [(CH_STDOUT, s.stdout.take()), (CH_STDERR, s.stderr.take())] {
        if let Some(mut pipe) = pipe {
            let tx = tx.clone();
            outputs.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Some(n) = read_chunk(&mut pipe, &mut buf).await {
                    if tx.send(ws_encode(ch, &buf[..n], b64)).await.is_err() {
                        return;
                    }
                }
            }));
        }
    }

    let status = run(backend, cmd, s.stdio).await;
    for o in outputs {
        let _ = o.await;
    }
    if let Some(bytes) = error_payload(&status, version.json_status()) {
        let _ = tx.send(ws_encode(CH_ERROR, &bytes, b64)).await;
    }
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    drop(tx);
    let _ = writer.await;
    let abort = reader.abort_handle();
    if tokio::time::timeout(CLOSE_GRACE, reader).await.is_err() {
        tracing::debug!("websocket client did not finish the close handshake");
        abort.abort();
    }
}
