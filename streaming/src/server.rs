//! The streaming HTTP server: hands out token URLs for the CRI `Exec`, `Attach` and
//! `PortForward` RPCs and serves `/exec/{token}`, `/attach/{token}`, `/portforward/{token}`
//! by upgrading to SPDY/3.1 or WebSocket.
//!
//! Invariants: a token is consumed by the first request naming it, whatever happens next
//! (kubelet semantics); unknown, reused and expired tokens get 404 with a body saying which;
//! failed negotiation gets 400/403 before any upgrade. Every session runs in its own task,
//! so a client vanishing mid-stream only ends that task.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::WebSocketStream;

use crate::backend::{AttachRequest, ExecRequest, PortForwardRequest, StreamingBackend};
use crate::protocol::{
    header_list, negotiate, RcVersion, HEADER_ACCEPTED_PROTOCOL_VERSIONS, HEADER_PROTOCOL_VERSION,
    SPDY_31, SPDY_PORTFORWARD, SPDY_REMOTECOMMAND, WS_PORTFORWARD, WS_REMOTECOMMAND,
};
use crate::remotecommand::Command;
use crate::spdy::{Connection, Role};
use crate::token::{PendingRequest, TokenCache, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TOKEN_TTL};

/// Server settings (kubelet's defaults).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Base of the URLs handed out (default `http://<bound address>`).
    pub base_url: Option<String>,
    pub token_ttl: Duration,
    pub max_in_flight: usize,
    /// How long a client has to open its streams after the upgrade.
    pub stream_creation_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            stream_creation_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a streaming request was not accepted (CRI maps these to gRPC codes: `TooManyInFlight`
/// and `TooManyForTarget` → ResourceExhausted, `Token` otherwise Internal, everything else
/// → InvalidArgument).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("missing required container_id")]
    MissingContainerId,
    #[error("missing required pod_sandbox_id")]
    MissingSandboxId,
    #[error("tty and stderr cannot both be true")]
    TtyWithStderr,
    #[error("one of stdin, stdout, or stderr must be set")]
    NoStreams,
    #[error("missing required cmd")]
    MissingCmd,
    #[error("invalid port {0}: must be in 1..65535")]
    BadPort(i64),
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("binding the streaming server to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

struct Inner<B> {
    backend: Arc<B>,
    cache: TokenCache,
    config: Config,
    base_url: String,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

/// A running streaming server; cheap to clone.
pub struct Server<B> {
    inner: Arc<Inner<B>>,
}

impl<B> Clone for Server<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<B: StreamingBackend> Server<B> {
    /// Binds `config.addr` and starts serving in the background.
    pub async fn start(config: Config, backend: Arc<B>) -> Result<Self, ServerError> {
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
        let base_url = config
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_string();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = Server {
            inner: Arc::new(Inner {
                backend,
                cache: TokenCache::new(config.token_ttl, config.max_in_flight),
                config,
                base_url,
                addr,
                shutdown,
            }),
        };
        tokio::spawn(server.clone().accept_loop(listener, shutdown_rx));
        Ok(server)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Stops accepting connections (sessions in progress go on).
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    /// Validates an exec and returns the URL for the `ExecResponse`.
    pub fn get_exec(&self, req: ExecRequest) -> Result<String, RequestError> {
        if req.container_id.is_empty() {
            return Err(RequestError::MissingContainerId);
        }
        if req.cmd.is_empty() {
            return Err(RequestError::MissingCmd);
        }
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        self.url("exec", PendingRequest::Remote(Command::Exec(req)))
    }

    /// Validates an attach and returns the URL for the `AttachResponse`.
    pub fn get_attach(&self, req: AttachRequest) -> Result<String, RequestError> {
        if req.container_id.is_empty() {
            return Err(RequestError::MissingContainerId);
        }
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        self.url("attach", PendingRequest::Remote(Command::Attach(req)))
    }

    /// Validates a port-forward (CRI ports are int32) and returns the URL.
    pub fn get_port_forward(
        &self,
        pod_sandbox_id: &str,
        ports: &[i32],
    ) -> Result<String, RequestError> {
        if pod_sandbox_id.is_empty() {
            return Err(RequestError::MissingSandboxId);
        }
        let ports = ports
            .iter()
            .map(|p| {
                u16::try_from(*p)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or(RequestError::BadPort(*p as i64))
            })
            .collect::<Result<Vec<u16>, _>>()?;
        self.url(
            "portforward",
            PendingRequest::PortForward(PortForwardRequest {
                pod_sandbox_id: pod_sandbox_id.to_string(),
                ports,
            }),
        )
    }

    fn url(&self, kind: &str, req: PendingRequest) -> Result<String, RequestError> {
        let token = self.inner.cache.insert(req)?;
        Ok(format!("{}/{kind}/{token}", self.inner.base_url))
    }

    async fn accept_loop(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "streaming server accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(req)) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await
                {
                    tracing::debug!(%peer, error = %e, "streaming connection ended with an error");
                }
            });
        }
    }

    fn handle(&self, req: Request<Body>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::POST {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and POST are served",
            );
        }
        let path = req.uri().path().to_string();
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let (kind, token) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if !matches!(kind, "exec" | "attach" | "portforward")
            || token.is_empty()
            || token.contains('/')
        {
            return text(
                StatusCode::NOT_FOUND,
                &format!("no such streaming endpoint: {path}"),
            );
        }
        let pending = match self.inner.cache.consume(token) {
            Ok(p) => p,
            Err(e) => return text(StatusCode::NOT_FOUND, &format!("{kind} token: {e}")),
        };
        if pending.kind() != kind {
            return text(
                StatusCode::NOT_FOUND,
                &format!("token is for {}, not {kind}", pending.kind()),
            );
        }
        if is_websocket(&req) {
            self.upgrade_websocket(req, pending)
        } else {
            self.upgrade_spdy(req, pending)
        }
    }

    fn upgrade_spdy(
        &self,
        mut req: Request<Body>,
        pending: PendingRequest,
    ) -> Response<Full<Bytes>> {
        let upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if upgrade.is_empty() || !connection_has_upgrade(&req) {
            return text(
                StatusCode::BAD_REQUEST,
                "unable to upgrade: missing upgrade headers in request",
            );
        }
        if !upgrade.eq_ignore_ascii_case(SPDY_31) {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("unable to upgrade: protocol {upgrade} is not supported"),
            );
        }
        let offers = header_list(req.headers().get_all(HEADER_PROTOCOL_VERSION).iter());
        let supported = match pending {
            PendingRequest::PortForward(_) => SPDY_PORTFORWARD,
            _ => SPDY_REMOTECOMMAND,
        };
        if offers.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("unable to upgrade: {HEADER_PROTOCOL_VERSION} is required"),
            );
        }
        let Some(protocol) = negotiate(&offers, supported) else {
            let mut resp = text(
                StatusCode::FORBIDDEN,
                &format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offers:?}, server accepts {supported:?}"
                ),
            );
            for p in supported {
                resp.headers_mut().append(
                    HEADER_ACCEPTED_PROTOCOL_VERSIONS,
                    HeaderValue::from_static(p),
                );
            }
            return resp;
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let server = self.clone();
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::info!(error = %e, "SPDY upgrade failed");
                    return;
                }
            };
            let (conn, incoming) = match Connection::new(TokioIo::new(upgraded), Role::Server) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "starting a SPDY connection");
                    return;
                }
            };
            let timeout = server.inner.config.stream_creation_timeout;
            let backend = server.inner.backend.clone();
            match pending {
                PendingRequest::Remote(command) => {
                    crate::remotecommand::spdy::serve(
                        &*backend,
                        conn,
                        incoming,
                        RcVersion::of(protocol),
                        command,
                        timeout,
                    )
                    .await
                }
                PendingRequest::PortForward(r) => {
                    crate::portforward::spdy::serve(
                        backend,
                        conn,
                        incoming,
                        r.pod_sandbox_id,
                        timeout,
                    )
                    .await
                }
            }
        });
        let mut resp = switching_protocols(SPDY_31);
        let h = resp.headers_mut();
        h.insert(HEADER_PROTOCOL_VERSION, HeaderValue::from_static(protocol));
        resp
    }

    fn upgrade_websocket(
        &self,
        mut req: Request<Body>,
        pending: PendingRequest,
    ) -> Response<Full<Bytes>> {
        let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
        let version_ok = req
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
        let Some(key) = key.filter(|_| version_ok) else {
            return text(
                StatusCode::BAD_REQUEST,
                "websocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13",
            );
        };
        let offers = header_list(req.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL).iter());
        let supported = match pending {
            PendingRequest::PortForward(_) => WS_PORTFORWARD,
            _ => WS_REMOTECOMMAND,
        };
        let protocol = if offers.is_empty() {
            ""
        } else {
            match negotiate(&offers, supported) {
                Some(p) => p,
                None => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "requested protocol(s) are not supported: {offers:?}; supports {supported:?}"
                        ),
                    )
                }
            }
        };
        let ports = match &pending {
            PendingRequest::PortForward(r) if r.ports.is_empty() => {
                match query_ports(req.uri().query().unwrap_or_default()) {
                    Ok(p) if !p.is_empty() => p,
                    Ok(_) => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            "query parameter \"port\" is required",
                        )
                    }
                    Err(bad) => {
                        return text(StatusCode::BAD_REQUEST, &format!("invalid port {bad:?}"))
                    }
                }
            }
            PendingRequest::PortForward(r) => r.ports.clone(),
            _ => Vec::new(),
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let server = self.clone();
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::info!(error = %e, "websocket upgrade failed");
                    return;
                }
            };
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), WsRole::Server, None)
                .await;
            let backend = server.inner.backend.clone();
            match pending {
                PendingRequest::Remote(command) => {
                    crate::remotecommand::websocket::serve(&*backend, ws, protocol, command).await
                }
                PendingRequest::PortForward(r) => {
                    crate::portforward::websocket::serve(
                        backend,
                        ws,
                        protocol,
                        r.pod_sandbox_id,
                        ports,
                    )
                    .await
                }
            }
        });
        let mut resp = switching_protocols("websocket");
        let h = resp.headers_mut();
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if !protocol.is_empty() {
            h.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        resp
    }
}

/// A 101 answer upgrading the connection to `protocol`.
fn switching_protocols(protocol: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static(protocol));
    resp
}

fn check_streams(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> Result<(), RequestError> {
    if tty && stderr {
        return Err(RequestError::TtyWithStderr);
    }
    if !stdin && !stdout && !stderr {
        return Err(RequestError::NoStreams);
    }
    Ok(())
}

fn connection_has_upgrade(req: &Request<Body>) -> bool {
    header_list(req.headers().get_all(header::CONNECTION).iter())
        .iter()
        .any(|v| v.eq_ignore_ascii_case("upgrade"))
}

fn is_websocket(req: &Request<Body>) -> bool {
    connection_has_upgrade(req)
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Ports from `port=80&port=443` (also comma-separated), as kubelet's websocket forwarder.
fn query_ports(query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for pair in query.split('&') {
        let Some(value) = pair.strip_prefix("port=") else {
            continue;
        };
        for p in value.split(',').filter(|p| !p.is_empty()) {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| p.to_string())?;
            ports.push(port);
        }
    }
    Ok(ports)
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
