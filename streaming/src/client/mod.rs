//! Client side of the streaming protocols, for crustctl and the e2e tests: remotecommand
//! (exec/attach) over SPDY or WebSocket ([`remote_command`]) and portforward over SPDY
//! ([`PortForwarder`]) or WebSocket ([`forward_websocket`]).

mod portforward;
mod remotecommand;

pub use portforward::{forward_websocket, ForwardedStream, PortForwarder};
pub use remotecommand::{remote_command, ClientStdio, Outcome, RemoteCommandOptions, Transport};

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::WebSocketStream;

use crate::protocol::{HEADER_PROTOCOL_VERSION, SPDY_31};
use crate::spdy::{Connection, Incoming, Role};

/// Errors of the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid streaming URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("connecting to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with {url}: {why}")]
    Http { url: String, why: String },
    #[error("server refused the upgrade with {status}: {body}")]
    Upgrade { status: StatusCode, body: String },
    #[error("SPDY: {0}")]
    Spdy(#[from] crate::spdy::ConnectionError),
    #[error("starting SPDY: {0}")]
    SpdyInit(#[from] crate::spdy::FrameError),
    #[error("websocket: {0}")]
    WebSocket(String),
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    #[error("remote: {0}")]
    Remote(String),
}

struct Target {
    authority: String,
    path: String,
}

fn target(url: &str) -> Result<Target, ClientError> {
    let bad = |why: &str| ClientError::BadUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URI"))?;
    match uri.scheme_str() {
        Some("http") | Some("ws") => {}
        Some(s) => return Err(bad(&format!("scheme {s} is not supported (use http)"))),
        None => return Err(bad("missing scheme")),
    }
    let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
    let authority = if authority.port().is_some() {
        authority.to_string()
    } else {
        format!("{}:80", authority.host())
    };
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    Ok(Target { authority, path })
}

async fn connect(t: &Target) -> Result<TcpStream, ClientError> {
    let tcp = TcpStream::connect(&t.authority)
        .await
        .map_err(|source| ClientError::Connect {
            addr: t.authority.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Upgrades `url` to SPDY/3.1 offering `protocols`; returns the connection and the choice.
pub async fn connect_spdy(
    url: &str,
    protocols: &[&str],
) -> Result<(Connection, Incoming, String), ClientError> {
    let t = target(url)?;
    let tcp = connect(&t).await?;
    let http_err = |e: hyper::Error| ClientError::Http {
        url: url.to_string(),
        why: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(http_err)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = Request::builder()
        .method("POST")
        .uri(&t.path)
        .header(header::HOST, &t.authority)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, SPDY_31);
    for p in protocols {
        req = req.header(HEADER_PROTOCOL_VERSION, *p);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| ClientError::Http {
            url: url.to_string(),
            why: e.to_string(),
        })?;
    let resp = sender.send_request(req).await.map_err(http_err)?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        return Err(ClientError::Upgrade { status, body });
    }
    let chosen = resp
        .headers()
        .get(HEADER_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !protocols.contains(&chosen.as_str()) {
        return Err(ClientError::Protocol(format!(
            "server chose protocol {chosen:?}, not one offered"
        )));
    }
    let upgraded = hyper::upgrade::on(resp).await.map_err(http_err)?;
    let (conn, incoming) = Connection::new(TokioIo::new(upgraded), Role::Client)?;
    Ok((conn, incoming, chosen))
}

/// Opens a WebSocket to `url` offering `protocols`; returns it and the server's choice.
pub async fn connect_websocket(
    url: &str,
    protocols: &[&str],
) -> Result<(WebSocketStream<TcpStream>, String), ClientError> {
    let t = target(url)?;
    let tcp = connect(&t).await?;
    let mut req = Request::builder()
        .method("GET")
        .uri(format!("ws://{}{}", t.authority, t.path))
        .header(header::HOST, &t.authority)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, generate_key());
    if !protocols.is_empty() {
        req = req.header(header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "));
    }
    let req = req.body(()).map_err(|e| ClientError::Http {
        url: url.to_string(),
        why: e.to_string(),
    })?;
    let (ws, resp) = match tokio_tungstenite::client_async(req, tcp).await {
        Ok(x) => x,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let status = resp.status();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            return Err(ClientError::Upgrade { status, body });
        }
        Err(e) => return Err(ClientError::WebSocket(e.to_string())),
    };
    let chosen = resp
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((ws, chosen))
}
