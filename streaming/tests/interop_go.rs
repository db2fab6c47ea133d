//! Interoperability with the real SPDY stack: a remotecommand v4 client written in Go on
//! moby/spdystream (what kubelet, kubectl and crictl use) runs against crust's server.
//! The same for WebSocket with gorilla/websocket (client-go's websocket executor). Needs
//! Debian's `golang-go`, `golang-github-docker-spdystream-dev` and
//! `golang-github-gorilla-websocket-dev`; skips with a printed reason when they are missing.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use crust_streaming::{
    AttachRequest, BackendError, Config, ExecRequest, Server, Stdio, StreamingBackend,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const PAYLOAD: usize = 300 * 1024;

struct Backend;

impl StreamingBackend for Backend {
    async fn exec(&self, _req: ExecRequest, mut io: Stdio) -> Result<i32, BackendError> {
        let mut input = Vec::new();
        io.stdin
            .take()
            .unwrap()
            .read_to_end(&mut input)
            .await
            .unwrap();
        let out = io.stdout.as_mut().unwrap();
        out.write_all(&input).await.unwrap();
        // Far beyond SPDY's 64 KiB default window: spdystream never sends WINDOW_UPDATE.
        out.write_all(&vec![b'x'; PAYLOAD]).await.unwrap();
        io.stderr
            .as_mut()
            .unwrap()
            .write_all(b"err\n")
            .await
            .unwrap();
        Ok(3)
    }
    async fn attach(&self, _: AttachRequest, _: Stdio) -> Result<(), BackendError> {
        Ok(())
    }
    async fn port_forward(
        &self,
        pod: String,
        port: u16,
        mut stream: DuplexStream,
    ) -> Result<(), BackendError> {
        if port != 7 {
            return Err(BackendError::SandboxNotFound(pod));
        }
        // An "echo" service on port 7 that answers one line and hangs up.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while stream.read(&mut b).await.unwrap() == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        stream.write_all(b"echo: ").await.unwrap();
        stream.write_all(&line).await.unwrap();
        stream.write_all(b"\n").await.unwrap();
        Ok(())
    }
}

/// Builds the Go client into `dir`; `None` (after printing why) when Go is missing.
async fn go_client(dir: &Path) -> Option<std::path::PathBuf> {
    build_go(dir, "spdy_client", "github.com/moby/spdystream").await
}

async fn build_go(dir: &Path, name: &str, library: &str) -> Option<std::path::PathBuf> {
    let lib = Path::new("/usr/share/gocode/src").join(library);
    let go = Path::new("/usr/bin/go");
    if !go.exists() || !lib.exists() {
        eprintln!("SKIP: needs golang-go and the Debian package of {library}");
        return None;
    }
    let bin = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/interop/{name}.go"));
    let built = tokio::process::Command::new(go)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.join("cache"))
        .output()
        .await
        .unwrap();
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(bin)
}

async fn run_go(bin: &Path, args: &[&str]) -> serde_json::Value {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(bin).args(args).output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "go client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn go_spdystream_client_port_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let Some(bin) = go_client(dir.path()).await else {
        return;
    };
    let server = Server::start(Config::default(), Arc::new(Backend))
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    let path = |url: String| {
        url.trim_start_matches(&format!("http://{addr}"))
            .to_string()
    };
    let url = path(server.get_port_forward("pod-g", &[7]).unwrap());
    let v = run_go(&bin, &["portforward", &url, &addr, "7", "hi\n"]).await;
    assert_eq!(v["protocol"], "portforward.k8s.io");
    assert_eq!(v["data"], "echo: hi\n");
    assert_eq!(v["error"], "");
    let url = path(server.get_port_forward("pod-g", &[]).unwrap());
    let v = run_go(&bin, &["portforward", &url, &addr, "8", "hi\n"]).await;
    assert_eq!(v["data"], "");
    assert_eq!(
        v["error"],
        "error forwarding port 8 to pod pod-g: pod sandbox pod-g not found"
    );
}

#[tokio::test]
async fn go_spdystream_client_runs_exec_with_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let Some(bin) = go_client(dir.path()).await else {
        return;
    };
    let server = Server::start(Config::default(), Arc::new(Backend))
        .await
        .unwrap();
    let url = server
        .get_exec(ExecRequest {
            container_id: "c".into(),
            cmd: vec!["sh".into(), "-c".into(), "exit 3".into()],
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        })
        .unwrap();
    let addr = server.local_addr().to_string();
    let path = url
        .trim_start_matches(&format!("http://{addr}"))
        .to_string();
    let v = run_go(&bin, &["exec", &path, &addr, "hello from go\n"]).await;
    assert_eq!(v["protocol"], "v4.channel.k8s.io");
    let stdout = v["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("hello from go\n"));
    assert_eq!(stdout.len(), "hello from go\n".len() + PAYLOAD);
    assert_eq!(v["stderr"], "err\n");
    assert_eq!(
        v["error"],
        r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
    );
}

#[tokio::test]
async fn go_gorilla_websocket_client_runs_exec_v5() {
    let dir = tempfile::tempdir().unwrap();
    let Some(bin) = build_go(dir.path(), "ws_client", "github.com/gorilla/websocket").await else {
        return;
    };
    let server = Server::start(Config::default(), Arc::new(Backend))
        .await
        .unwrap();
    let url = server
        .get_exec(ExecRequest {
            container_id: "c".into(),
            cmd: vec!["sh".into(), "-c".into(), "exit 3".into()],
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        })
        .unwrap();
    let ws_url = url.replacen("http://", "ws://", 1);
    let v = run_go(&bin, &[&ws_url, "hello over ws\n"]).await;
    assert_eq!(v["protocol"], "v5.channel.k8s.io");
    let stdout = v["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("hello over ws\n"));
    assert_eq!(stdout.len(), "hello over ws\n".len() + PAYLOAD);
    assert_eq!(v["stderr"], "err\n");
    assert!(v["error"].as_str().unwrap().contains(
        r#""reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}"#
    ));
    assert_eq!(v["close"], 1000);
}
