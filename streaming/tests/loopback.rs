//! Client ↔ server over real TCP loopback sockets with a fake backend: every protocol
//! version, stdio, exit codes, resize, attach, port-forward, and bad input.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crust_streaming::client::{
    connect_spdy, forward_websocket, remote_command, ClientError, ClientStdio, PortForwarder,
    RemoteCommandOptions, Transport,
};
use crust_streaming::protocol::*;
use crust_streaming::spdy::{ConnectionError, Headers};
use crust_streaming::{
    AttachRequest, BackendError, Config, ExecRequest, Server, Stdio, StreamingBackend,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Fake {
    events: Mutex<Vec<String>>,
}

impl Fake {
    fn event(&self, e: impl Into<String>) {
        self.events.lock().unwrap().push(e.into());
    }
    fn saw(&self, e: &str) -> bool {
        self.events.lock().unwrap().iter().any(|x| x == e)
    }
}

async fn echo(io: &mut Stdio) {
    let (Some(mut i), Some(o)) = (io.stdin.take(), io.stdout.as_mut()) else {
        return;
    };
    tokio::io::copy(&mut i, o).await.unwrap();
}

impl StreamingBackend for Fake {
    async fn exec(&self, req: ExecRequest, mut io: Stdio) -> Result<i32, BackendError> {
        self.event(format!("exec {}", req.cmd.join(" ")));
        match req.cmd[0].as_str() {
            "echo-stdin" => {
                echo(&mut io).await;
                Ok(0)
            }
            "out-err-exit" => {
                io.stdout
                    .as_mut()
                    .unwrap()
                    .write_all(b"out\n")
                    .await
                    .unwrap();
                io.stderr
                    .as_mut()
                    .unwrap()
                    .write_all(b"err\n")
                    .await
                    .unwrap();
                Ok(3)
            }
            "resize" => {
                let mut rx = io.resize.take().expect("resize channel");
                let out = io.stdout.as_mut().unwrap();
                for _ in 0..2 {
                    let s = rx.recv().await.unwrap();
                    out.write_all(format!("{}x{}\n", s.width, s.height).as_bytes())
                        .await
                        .unwrap();
                }
                Ok(0)
            }
            "big" => {
                let out = io.stdout.as_mut().unwrap();
                for _ in 0..64 {
                    out.write_all(&[b'z'; 32 * 1024]).await.unwrap();
                }
                Ok(0)
            }
            "wait-gone" => {
                tokio::time::timeout(Duration::from_secs(10), io.client_gone())
                    .await
                    .unwrap();
                // Writes now fail instead of blocking.
                let mut failed = false;
                for _ in 0..100 {
                    if io
                        .stdout
                        .as_mut()
                        .unwrap()
                        .write_all(&[0; 4096])
                        .await
                        .is_err()
                    {
                        failed = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                self.event(format!("gone write_failed={failed}"));
                Ok(0)
            }
            _ => Err(BackendError::ContainerNotRunning(req.container_id)),
        }
    }

    async fn attach(&self, req: AttachRequest, mut io: Stdio) -> Result<(), BackendError> {
        self.event(format!("attach {}", req.container_id));
        echo(&mut io).await;
        Ok(())
    }

    async fn port_forward(
        &self,
        pod: String,
        port: u16,
        stream: DuplexStream,
    ) -> Result<(), BackendError> {
        self.event(format!("forward {pod} {port}"));
        let mut tcp =
            TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| BackendError::Failed {
                    operation: "connect".into(),
                    message: e.to_string(),
                })?;
        // As containerd: client EOF half-closes towards the pod; the forward ends when the
        // pod side closes.
        let (mut sr, mut sw) = tokio::io::split(stream);
        let (mut tr, mut tw) = tcp.split();
        let up = async {
            let _ = tokio::io::copy(&mut sr, &mut tw).await;
            let _ = tw.shutdown().await;
            std::future::pending::<()>().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut tr, &mut sw).await;
            let _ = sw.shutdown().await;
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
        Ok(())
    }
}

async fn start(config: Config) -> (Server<Fake>, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    (Server::start(config, fake.clone()).await.unwrap(), fake)
}

fn exec(cmd: &str, tty: bool, stdin: bool, stderr: bool) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.split(' ').map(String::from).collect(),
        tty,
        stdin,
        stdout: true,
        stderr,
    }
}

/// A local writer whose bytes the test can read afterwards.
fn sink() -> (
    Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    tokio::task::JoinHandle<Vec<u8>>,
) {
    let (w, mut r) = tokio::io::duplex(1 << 20);
    let h = tokio::spawn(async move {
        let mut v = Vec::new();
        r.read_to_end(&mut v).await.unwrap();
        v
    });
    (Box::new(w), h)
}

async fn run_out_err(
    server: &Server<Fake>,
    transport: Transport,
    protocol: &str,
) -> (Result<i32, ClientError>, Vec<u8>, Vec<u8>) {
    let url = server
        .get_exec(exec("out-err-exit", false, false, true))
        .unwrap();
    let (o, oh) = sink();
    let (e, eh) = sink();
    let mut opts = RemoteCommandOptions::new(transport, false);
    opts.protocols = vec![protocol.to_string()];
    let io = ClientStdio {
        stdout: Some(o),
        stderr: Some(e),
        ..Default::default()
    };
    let r = remote_command(&url, &opts, io).await.map(|o| {
        assert_eq!(o.protocol, protocol);
        o.exit_code
    });
    (r, oh.await.unwrap(), eh.await.unwrap())
}

#[tokio::test]
async fn exec_streams_and_exit_codes_on_every_protocol() {
    let (server, _) = start(Config::default()).await;
    for (t, p) in [
        (Transport::Spdy, REMOTECOMMAND_V4),
        (Transport::WebSocket, REMOTECOMMAND_V5),
        (Transport::WebSocket, REMOTECOMMAND_V4),
        (Transport::WebSocket, BASE64_V4),
    ] {
        let (r, out, err) = run_out_err(&server, t, p).await;
        assert_eq!(r.unwrap(), 3, "{p}");
        assert_eq!(out, b"out\n", "{p}");
        assert_eq!(err, b"err\n", "{p}");
    }
    for (t, p) in [
        (Transport::Spdy, REMOTECOMMAND_V3),
        (Transport::Spdy, REMOTECOMMAND_V2),
        (Transport::Spdy, REMOTECOMMAND_V1),
        (Transport::WebSocket, REMOTECOMMAND_V1),
        (Transport::WebSocket, BASE64_V1),
    ] {
        let (r, out, err) = run_out_err(&server, t, p).await;
        match r {
            Err(ClientError::Remote(m)) => assert!(
                m.contains("non-zero exit code") && m.ends_with("exit code 3"),
                "{p}: {m}"
            ),
            other => panic!("{p}: {other:?}"),
        }
        assert_eq!(
            (out.as_slice(), err.as_slice()),
            (&b"out\n"[..], &b"err\n"[..]),
            "{p}"
        );
    }
    // A backend failure is an InternalError status, not an exit code.
    let url = server.get_exec(exec("nope", false, false, false)).unwrap();
    let (o, _oh) = sink();
    let r = remote_command(
        &url,
        &RemoteCommandOptions::new(Transport::Spdy, false),
        ClientStdio {
            stdout: Some(o),
            ..Default::default()
        },
    )
    .await;
    match r {
        Err(ClientError::Remote(m)) => {
            assert!(m.contains("container c1 is not running"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stdin_round_trips_with_eof_and_large_output() {
    let (server, _) = start(Config::default()).await;
    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for (t, p) in [
        (Transport::Spdy, REMOTECOMMAND_V4),
        (Transport::Spdy, REMOTECOMMAND_V1),
        (Transport::WebSocket, REMOTECOMMAND_V5),
    ] {
        let url = server
            .get_exec(exec("echo-stdin", false, true, false))
            .unwrap();
        let (o, oh) = sink();
        let mut opts = RemoteCommandOptions::new(t, false);
        opts.protocols = vec![p.into()];
        let io = ClientStdio {
            stdin: Some(Box::new(std::io::Cursor::new(input.clone()))),
            stdout: Some(o),
            ..Default::default()
        };
        let out = remote_command(&url, &opts, io).await.unwrap();
        assert_eq!(out.exit_code, 0);
        assert_eq!(oh.await.unwrap(), input, "{p}");
    }
    let url = server.get_exec(exec("big", false, false, false)).unwrap();
    let (o, oh) = sink();
    remote_command(
        &url,
        &RemoteCommandOptions::new(Transport::Spdy, false),
        ClientStdio {
            stdout: Some(o),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(oh.await.unwrap().len(), 64 * 32 * 1024);
}

#[tokio::test]
async fn tty_resize_events_reach_the_backend() {
    let (server, _) = start(Config::default()).await;
    for (t, p) in [
        (Transport::Spdy, REMOTECOMMAND_V4),
        (Transport::Spdy, REMOTECOMMAND_V3),
        (Transport::WebSocket, REMOTECOMMAND_V5),
    ] {
        let url = server.get_exec(exec("resize", true, false, false)).unwrap();
        let (o, oh) = sink();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(TerminalSizeOf(80, 24).into()).await.unwrap();
        tx.send(TerminalSizeOf(100, 50).into()).await.unwrap();
        let mut opts = RemoteCommandOptions::new(t, true);
        opts.protocols = vec![p.into()];
        let io = ClientStdio {
            stdout: Some(o),
            resize: Some(rx),
            ..Default::default()
        };
        assert_eq!(remote_command(&url, &opts, io).await.unwrap().exit_code, 0);
        assert_eq!(oh.await.unwrap(), b"80x24\n100x50\n", "{p}");
    }
}

struct TerminalSizeOf(u16, u16);
impl From<TerminalSizeOf> for crust_streaming::TerminalSize {
    fn from(s: TerminalSizeOf) -> Self {
        crust_streaming::TerminalSize {
            width: s.0,
            height: s.1,
        }
    }
}

#[tokio::test]
async fn attach_over_both_transports() {
    let (server, fake) = start(Config::default()).await;
    for t in [Transport::Spdy, Transport::WebSocket] {
        let url = server
            .get_attach(AttachRequest {
                container_id: "c9".into(),
                tty: false,
                stdin: true,
                stdout: true,
                stderr: false,
            })
            .unwrap();
        assert!(url.contains("/attach/"));
        let (o, oh) = sink();
        let io = ClientStdio {
            stdin: Some(Box::new(&b"typed\n"[..])),
            stdout: Some(o),
            ..Default::default()
        };
        let out = remote_command(&url, &RemoteCommandOptions::new(t, false), io)
            .await
            .unwrap();
        assert_eq!(out.exit_code, 0);
        assert_eq!(oh.await.unwrap(), b"typed\n");
    }
    assert!(fake.saw("attach c9"));
}

/// A TCP server echoing lines; "quit" gets "bye" and a close.
async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "quit" {
                        let _ = w.write_all(b"bye\n").await;
                        return;
                    }
                    let _ = w.write_all(format!("{line}\n").as_bytes()).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn spdy_port_forward_many_ports_and_connections() {
    let (server, fake) = start(Config::default()).await;
    let (p1, p2) = (echo_server().await, echo_server().await);
    let url = server.get_port_forward("pod-a", &[]).unwrap();
    let pf = Arc::new(PortForwarder::connect(&url).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..10 {
        let pf = pf.clone();
        let port = if i % 2 == 0 { p1 } else { p2 };
        tasks.push(tokio::spawn(async move {
            let (mine, theirs) = tokio::io::duplex(1 << 16);
            let fwd = tokio::spawn(async move { pf.forward(port, theirs).await });
            let (r, mut w) = tokio::io::split(mine);
            let msg = format!("hello {i} {}\n", "x".repeat(i * 1000));
            w.write_all(msg.as_bytes()).await.unwrap();
            w.shutdown().await.unwrap();
            let mut got = String::new();
            BufReader::new(r).read_to_string(&mut got).await.unwrap();
            assert_eq!(got, msg);
            fwd.await.unwrap().unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Nothing listens on a just-closed port: the error stream says so.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let (_mine, theirs) = tokio::io::duplex(1024);
    match pf.forward(dead, theirs).await {
        Err(ClientError::Remote(m)) => {
            assert!(
                m.starts_with(&format!("error forwarding port {dead} to pod pod-a")),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Through a local listener, as `port-forward 0:p1` does.
    let local = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local_addr = local.local_addr().unwrap();
    let serving = tokio::spawn(pf.clone().serve_listener(local, p1));
    let mut c = TcpStream::connect(local_addr).await.unwrap();
    c.write_all(b"via listener\nquit\n").await.unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "via listener\nbye\n");
    pf.close().await;
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // A non-numeric port is reported on the error stream.
    let url = server.get_port_forward("pod-a", &[]).unwrap();
    let (conn, _inc, _) = connect_spdy(&url, &[PORTFORWARD_V1]).await.unwrap();
    let h = |kind: &str| {
        Headers::new()
            .with(HEADER_STREAM_TYPE, kind)
            .with(HEADER_PORT, "http")
            .with(HEADER_REQUEST_ID, "7")
    };
    let mut err = conn.open_stream(h(STREAM_ERROR)).await.unwrap();
    let mut data = conn.open_stream(h(STREAM_DATA)).await.unwrap();
    let msg = err.reader.read_to_end(4096).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&msg),
        "invalid port \"http\": must be an integer in 1..65535"
    );
    assert_eq!(data.reader.read().await.unwrap(), None);
    conn.close().await;
    assert!(fake.saw(&format!("forward pod-a {p1}")));
}

#[tokio::test]
async fn websocket_port_forward_prefixes_ports() {
    let (server, _) = start(Config::default()).await;
    let (p1, p2) = (echo_server().await, echo_server().await);
    let url = server
        .get_port_forward("pod-w", &[p1 as i32, p2 as i32])
        .unwrap();
    let mut locals = Vec::new();
    let mut mine = Vec::new();
    for _ in 0..2 {
        let (a, b) = tokio::io::duplex(1 << 16);
        locals.push(b);
        mine.push(a);
    }
    let session = tokio::spawn(async move { forward_websocket(&url, locals).await });
    for (i, m) in mine.iter_mut().enumerate() {
        m.write_all(format!("hi {i}\nquit\n").as_bytes())
            .await
            .unwrap();
    }
    for (i, m) in mine.into_iter().enumerate() {
        let mut got = String::new();
        BufReader::new(m).read_to_string(&mut got).await.unwrap();
        assert_eq!(got, format!("hi {i}\nbye\n"));
    }
    let errors = session.await.unwrap().unwrap();
    assert_eq!(errors, vec![String::new(), String::new()]);
}

async fn http_status(addr: std::net::SocketAddr, raw: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn bad_tokens_and_bad_upgrades_get_clear_http_errors() {
    let (server, _) = start(Config {
        token_ttl: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let opts = RemoteCommandOptions::new(Transport::Spdy, false);
    let io = || ClientStdio {
        stdout: Some(Box::new(tokio::io::sink())),
        ..Default::default()
    };
    // Reuse.
    let url = server
        .get_exec(exec("echo-stdin", false, false, false))
        .unwrap();
    remote_command(&url, &opts, io()).await.unwrap();
    match remote_command(&url, &opts, io()).await {
        Err(ClientError::Upgrade { status, body }) => {
            assert_eq!(status, 404);
            assert!(body.contains("unknown or was already used"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    // Expiry.
    let url = server
        .get_exec(exec("echo-stdin", false, false, false))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    match remote_command(&url, &opts, io()).await {
        Err(ClientError::Upgrade { status, body }) => {
            assert_eq!(status, 404);
            assert!(body.contains("expired"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    // Unknown token, over WebSocket too.
    let base = format!("http://{}", server.local_addr());
    for t in [Transport::Spdy, Transport::WebSocket] {
        match remote_command(
            &format!("{base}/exec/AAAAAAAAAAAAAAAAAAAAAA"),
            &RemoteCommandOptions::new(t, false),
            io(),
        )
        .await
        {
            Err(ClientError::Upgrade { status, .. }) => assert_eq!(status, 404),
            other => panic!("{other:?}"),
        }
    }
    // An exec token on the attach path is spent and refused.
    let url = server
        .get_exec(exec("echo-stdin", false, false, false))
        .unwrap();
    let wrong = url.replace("/exec/", "/attach/");
    match remote_command(&wrong, &opts, io()).await {
        Err(ClientError::Upgrade { status, body }) => {
            assert_eq!(status, 404);
            assert!(body.contains("token is for exec, not attach"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    // Plain GET without an upgrade.
    let url = server
        .get_exec(exec("echo-stdin", false, false, false))
        .unwrap();
    let path = url.trim_start_matches(&base);
    let resp = http_status(
        server.local_addr(),
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("missing upgrade headers"), "{resp}");
    // No common subprotocol: 403 listing what the server accepts.
    let url = server
        .get_exec(exec("echo-stdin", false, false, false))
        .unwrap();
    let path = url.trim_start_matches(&base);
    let resp = http_status(
        server.local_addr(),
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v9.channel.k8s.io\r\n\r\n"
        ),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("x-accepted-stream-protocol-versions: v4.channel.k8s.io"),
        "{resp}"
    );
    // Unknown paths.
    let resp = http_status(
        server.local_addr(),
        "GET /foo/bar HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}

#[tokio::test]
async fn request_validation_matches_kubelet() {
    let (server, _) = start(Config::default()).await;
    assert!(matches!(
        server.get_exec(exec("x", true, false, true)),
        Err(crust_streaming::RequestError::TtyWithStderr)
    ));
    let mut none = exec("x", false, false, false);
    none.stdout = false;
    assert!(matches!(
        server.get_exec(none),
        Err(crust_streaming::RequestError::NoStreams)
    ));
    let mut noid = exec("x", false, false, false);
    noid.container_id.clear();
    assert!(matches!(
        server.get_exec(noid),
        Err(crust_streaming::RequestError::MissingContainerId)
    ));
    assert!(matches!(
        server.get_port_forward("p", &[70000]),
        Err(crust_streaming::RequestError::BadPort(70000))
    ));
    assert!(matches!(
        server.get_port_forward("", &[80]),
        Err(crust_streaming::RequestError::MissingSandboxId)
    ));
}

#[tokio::test]
async fn unknown_streams_and_garbage_do_not_hurt_the_server() {
    let (server, _) = start(Config::default()).await;
    let url = server
        .get_exec(exec("echo-stdin", false, true, false))
        .unwrap();
    let (conn, _inc, proto) = connect_spdy(&url, &[REMOTECOMMAND_V4]).await.unwrap();
    assert_eq!(proto, REMOTECOMMAND_V4);
    let bogus = conn
        .open_stream(Headers::new().with(HEADER_STREAM_TYPE, "bogus"))
        .await;
    assert!(matches!(
        bogus,
        Err(ConnectionError::Reset { status: 3, .. })
    ));
    let unexpected = conn
        .open_stream(Headers::new().with(HEADER_STREAM_TYPE, STREAM_STDERR))
        .await;
    assert!(matches!(unexpected, Err(ConnectionError::Reset { .. })));
    let mut err = conn
        .open_stream(Headers::new().with(HEADER_STREAM_TYPE, STREAM_ERROR))
        .await
        .unwrap();
    let mut stdin = conn
        .open_stream(Headers::new().with(HEADER_STREAM_TYPE, STREAM_STDIN))
        .await
        .unwrap();
    let mut stdout = conn
        .open_stream(Headers::new().with(HEADER_STREAM_TYPE, STREAM_STDOUT))
        .await
        .unwrap();
    stdin.writer.write(b"abc").await.unwrap();
    stdin.writer.finish().await.unwrap();
    assert_eq!(stdout.reader.read_to_end(1024).await.unwrap(), b"abc");
    let status = err.reader.read_to_end(4096).await.unwrap();
    assert_eq!(status, br#"{"metadata":{},"status":"Success"}"#);
    conn.close().await;

    // Garbage after a successful upgrade: the server drops that connection only.
    let url = server
        .get_exec(exec("echo-stdin", false, true, false))
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let path = url.trim_start_matches(&base);
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n").as_bytes()).await.unwrap();
    s.write_all(&[0x80, 0x03, 0x00, 0x01, 0, 0, 0, 3, 1, 2, 3])
        .await
        .unwrap();
    s.write_all(&[0x80, 0x09, 0x00, 0x01, 0, 0, 0, 0x02, 1, 2])
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut sink)).await;
    assert!(String::from_utf8_lossy(&sink).starts_with("HTTP/1.1 101"));
    // And it still serves.
    let (r, _, _) = run_out_err(&server, Transport::Spdy, REMOTECOMMAND_V4).await;
    assert_eq!(r.unwrap(), 3);
}

#[tokio::test]
async fn client_vanishing_mid_stream_is_cleaned_up() {
    let (server, fake) = start(Config {
        stream_creation_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let url = server
        .get_exec(exec("wait-gone", false, false, false))
        .unwrap();
    let (conn, _inc, _) = connect_spdy(&url, &[REMOTECOMMAND_V4]).await.unwrap();
    let _e = conn
        .open_stream(Headers::new().with(HEADER_STREAM_TYPE, STREAM_ERROR))
        .await
        .unwrap();
    let _o = conn
        .open_stream(Headers::new().with(HEADER_STREAM_TYPE, STREAM_STDOUT))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.abort();
    for _ in 0..100 {
        if fake.saw("gone write_failed=true") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fake.saw("gone write_failed=true"));

    // A client that upgrades but never opens its streams is dropped after the timeout.
    let url = server
        .get_exec(exec("echo-stdin", false, false, false))
        .unwrap();
    let (conn, _inc, _) = connect_spdy(&url, &[REMOTECOMMAND_V4]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .unwrap();
}

/// Protocol overhead of a streamed exec (token, upgrade, streams, status) with a backend
/// that returns at once. `cargo test -p crust-streaming --test loopback -- --ignored --nocapture`
#[tokio::test]
#[ignore = "measurement, prints figures"]
async fn measure_streamed_exec_latency() {
    let (server, _) = start(Config::default()).await;
    for t in [Transport::Spdy, Transport::WebSocket] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let url = server
                .get_exec(exec("echo-stdin", false, false, false))
                .unwrap();
            let t0 = std::time::Instant::now();
            let io = ClientStdio {
                stdout: Some(Box::new(tokio::io::sink())),
                ..Default::default()
            };
            remote_command(&url, &RemoteCommandOptions::new(t, false), io)
                .await
                .unwrap();
            times.push(t0.elapsed());
        }
        times.sort();
        eprintln!(
            "{t:?}: median {:?}, p90 {:?} over {} execs",
            times[times.len() / 2],
            times[times.len() * 9 / 10],
            times.len()
        );
    }
}
