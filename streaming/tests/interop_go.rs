//! Interoperability with the real SPDY stack: a remotecommand v4 client written in Go on
//! moby/spdystream (what kubelet, kubectl and crictl use) runs against crust's server.
//! Needs Debian's `golang-go` and `golang-github-docker-spdystream-dev`; skips with a
//! printed reason when they are missing.
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
    async fn port_forward(&self, _: String, _: u16, _: DuplexStream) -> Result<(), BackendError> {
        Ok(())
    }
}

#[tokio::test]
async fn go_spdystream_client_runs_exec_with_exit_code() {
    let spdystream = Path::new("/usr/share/gocode/src/github.com/moby/spdystream");
    let go = Path::new("/usr/bin/go");
    if !go.exists() || !spdystream.exists() {
        eprintln!("SKIP: needs golang-go and golang-github-docker-spdystream-dev");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("spdy_client");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/spdy_client.go");
    let built = tokio::process::Command::new(go)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.path().join("cache"))
        .output()
        .await
        .unwrap();
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );

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
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(&bin)
            .args([&path, &addr, "hello from go\n"])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "go client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
