//! remotecommand client: opens the streams kubectl opens (error first, then stdin, stdout,
//! stderr, resize), pumps local stdio, and turns the error stream into an exit code.

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{connect_spdy, connect_websocket, ClientError};
use crate::backend::TerminalSize;
use crate::protocol::{
    is_base64, ws_decode, ws_encode, RcVersion, WsFrame, CH_CLOSE, CH_ERROR, CH_RESIZE, CH_STDERR,
    CH_STDIN, CH_STDOUT, HEADER_STREAM_TYPE, REMOTECOMMAND_V4, REMOTECOMMAND_V5,
    SPDY_REMOTECOMMAND, STREAM_ERROR, STREAM_RESIZE, STREAM_STDERR, STREAM_STDIN, STREAM_STDOUT,
};
use crate::spdy::{Headers, StreamWriter};
use crate::status::Status;

/// Which wire protocol to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Spdy,
    WebSocket,
}

/// How to run the session.
#[derive(Debug, Clone)]
pub struct RemoteCommandOptions {
    pub transport: Transport,
    /// Subprotocols to offer, preferred first (empty: all this client speaks).
    pub protocols: Vec<String>,
    pub tty: bool,
}

impl RemoteCommandOptions {
    /// Defaults for a transport: SPDY v4..v1 or WebSocket v5, v4.
    pub fn new(transport: Transport, tty: bool) -> Self {
        Self {
            transport,
            protocols: Vec::new(),
            tty,
        }
    }
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Local ends of the session; a `None` stream is not requested.
#[derive(Default)]
pub struct ClientStdio {
    pub stdin: Option<Reader>,
    pub stdout: Option<Writer>,
    pub stderr: Option<Writer>,
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub protocol: String,
    pub exit_code: i32,
}

/// Runs a remote command at a streaming `url` (from `Exec` or `Attach`).
pub async fn remote_command(
    url: &str,
    opts: &RemoteCommandOptions,
    io: ClientStdio,
) -> Result<Outcome, ClientError> {
    match opts.transport {
        Transport::Spdy => spdy(url, opts, io).await,
        Transport::WebSocket => websocket(url, opts, io).await,
    }
}

fn offers<'a>(opts: &'a RemoteCommandOptions, default: &[&'static str]) -> Vec<&'a str> {
    if opts.protocols.is_empty() {
        default.to_vec()
    } else {
        opts.protocols.iter().map(String::as_str).collect()
    }
}

fn outcome(protocol: String, version: RcVersion, error: &[u8]) -> Result<Outcome, ClientError> {
    if version.json_status() {
        if error.is_empty() {
            return Ok(Outcome {
                protocol,
                exit_code: 0,
            });
        }
        let status: Status = serde_json::from_slice(error).map_err(|e| {
            ClientError::Protocol(format!(
                "error stream is not a Status ({e}): {}",
                String::from_utf8_lossy(error)
            ))
        })?;
        match status.reported_exit_code() {
            Some(exit_code) => Ok(Outcome {
                protocol,
                exit_code,
            }),
            None => Err(ClientError::Remote(status.message)),
        }
    } else if error.is_empty() {
        Ok(Outcome {
            protocol,
            exit_code: 0,
        })
    } else {
        Err(ClientError::Remote(
            String::from_utf8_lossy(error).into_owned(),
        ))
    }
}

async fn copy_in(mut from: Reader, mut to: StreamWriter) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = to.finish().await;
}

/// Reads the error stream to its end. A RST_STREAM with CANCEL also ends it: Go servers
/// (containerd's CRI streaming server, through spdystream) reset the streams still open when
/// they close the connection after writing the status, and Go clients read that as EOF.
async fn read_error_stream(r: &mut crate::spdy::StreamReader) -> Result<Vec<u8>, ClientError> {
    const CANCEL: u32 = 5;
    let mut out = Vec::new();
    loop {
        match r.read().await {
            Ok(Some(b)) => {
                let room = (1usize << 20).saturating_sub(out.len());
                out.extend_from_slice(&b[..b.len().min(room)]);
            }
            Ok(None) => return Ok(out),
            Err(crate::spdy::ConnectionError::Reset { status: CANCEL, .. }) => return Ok(out),
            Err(e) => return Err(e.into()),
        }
    }
}

async fn spdy(
    url: &str,
    opts: &RemoteCommandOptions,
    io: ClientStdio,
) -> Result<Outcome, ClientError> {
    let offered = offers(opts, SPDY_REMOTECOMMAND);
    let (conn, _incoming, protocol) = connect_spdy(url, &offered).await?;
    let version = RcVersion::of(&protocol);
    let open = |kind: &str| {
        let conn = conn.clone();
        let h = Headers::new().with(HEADER_STREAM_TYPE, kind);
        async move { conn.open_stream(h).await }
    };
    let result = async {
        let mut error = open(STREAM_ERROR).await?;
        error.writer.finish().await?;
        let mut background = Vec::new();
        if let Some(stdin) = io.stdin {
            let s = open(STREAM_STDIN).await?;
            background.push(tokio::spawn(copy_in(stdin, s.writer)));
        }
        let mut outputs = Vec::new();
        for (kind, local) in [(STREAM_STDOUT, io.stdout), (STREAM_STDERR, io.stderr)] {
            let Some(mut local) = local else { continue };
            if kind == STREAM_STDERR && opts.tty {
                continue;
            }
            let mut s = open(kind).await?;
            s.writer.finish().await?;
            outputs.push(tokio::spawn(async move {
                while let Ok(Some(b)) = s.reader.read().await {
                    if local.write_all(&b).await.is_err() {
                        break;
                    }
                    let _ = local.flush().await;
                }
                let _ = local.flush().await;
            }));
        }
        if let (true, true, Some(mut rx)) = (opts.tty, version.resizes(), io.resize) {
            let mut s = open(STREAM_RESIZE).await?;
            background.push(tokio::spawn(async move {
                while let Some(size) = rx.recv().await {
                    let Ok(json) = serde_json::to_vec(&size) else {
                        continue;
                    };
                    if s.writer.write(&json).await.is_err() {
                        break;
                    }
                }
            }));
        }
        let err_bytes = read_error_stream(&mut error.reader).await;
        for o in outputs {
            let _ = o.await;
        }
        for b in background {
            b.abort();
        }
        let err_bytes = err_bytes?;
        outcome(protocol.clone(), version, &err_bytes)
    }
    .await;
    conn.close().await;
    result
}

async fn websocket(
    url: &str,
    opts: &RemoteCommandOptions,
    io: ClientStdio,
) -> Result<Outcome, ClientError> {
    let offered = offers(opts, &[REMOTECOMMAND_V5, REMOTECOMMAND_V4]);
    let (ws, protocol) = connect_websocket(url, &offered).await?;
    let version = RcVersion::of(&protocol);
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
    let mut background = Vec::new();
    if let Some(mut stdin) = io.stdin {
        let tx = tx.clone();
        background.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(ws_encode(CH_STDIN, &buf[..n], b64)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if version >= RcVersion::V5 {
                let _ = tx.send(ws_encode(CH_CLOSE, &[CH_STDIN], b64)).await;
            }
        }));
    }
    if let (true, Some(mut resize)) = (opts.tty, io.resize) {
        let tx = tx.clone();
        background.push(tokio::spawn(async move {
            while let Some(size) = resize.recv().await {
                let Ok(json) = serde_json::to_vec(&size) else {
                    continue;
                };
                if tx.send(ws_encode(CH_RESIZE, &json, b64)).await.is_err() {
                    return;
                }
            }
        }));
    }
    // `tx` lives until the server's close: dropping it closes our side of the socket,
    // which would cut the server off before it reports the exit status.
    let (mut stdout, mut stderr) = (io.stdout, io.stderr);
    let mut error = Vec::new();
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
            Ok(WsFrame::Data(CH_STDOUT, d)) => write_local(&mut stdout, &d).await,
            Ok(WsFrame::Data(CH_STDERR, d)) => write_local(&mut stderr, &d).await,
            Ok(WsFrame::Data(CH_ERROR, d)) => error.extend_from_slice(&d),
            Ok(WsFrame::Data(CH_CLOSE, d)) => match d.first() {
                Some(&CH_STDOUT) => stdout = None,
                Some(&CH_STDERR) => stderr = None,
                _ => {}
            },
            Ok(WsFrame::Close) => break,
            Ok(_) => {}
            Err(e) => {
                failure = Some(ClientError::Protocol(e.to_string()));
                break;
            }
        }
    }
    for b in background {
        b.abort();
    }
    drop(tx);
    let _ = writer.await;
    if let Some(f) = failure {
        return Err(f);
    }
    outcome(protocol, version, &error)
}

async fn write_local(w: &mut Option<Writer>, data: &[u8]) {
    if let Some(out) = w.as_mut() {
        if out.write_all(data).await.is_err() || out.flush().await.is_err() {
            *w = None;
        }
    }
}
