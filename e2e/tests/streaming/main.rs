//! End-to-end tests of crustd's streaming server: CRI `Exec`, `Attach` and `PortForward`
//! URLs driven with crust's own client over SPDY/3.1 and WebSocket, against real crustd,
//! shim and runtime processes; and the bad-input cases (reused and expired tokens, unknown
//! and stopped containers, a client vanishing mid-stream).

use std::time::{Duration, Instant};

use crust_e2e::pods::{self, container_config, pod_config, setup_with};
use crust_e2e::require_root;
use crust_e2e::session::read_until;
use crust_streaming::client::{
    forward_websocket, remote_command, ClientError, ClientStdio, PortForwarder,
    RemoteCommandOptions, Transport,
};
use crust_streaming::TerminalSize;
use k8s_cri::v1 as kc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Code;

mod attach;
mod bad_input;
mod exec;
mod port_forward;

const TRANSPORTS: [Transport; 2] = [Transport::Spdy, Transport::WebSocket];

/// A local output: the writer to hand to the client and a task collecting what arrives.
fn sink() -> (Box<DuplexStream>, JoinHandle<String>) {
    let (w, mut r) = tokio::io::duplex(1 << 20);
    let h = tokio::spawn(async move {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v).await;
        String::from_utf8_lossy(&v).into_owned()
    });
    (Box::new(w), h)
}

/// A TCP relay in front of the streaming server whose task can be aborted to make a
/// client vanish the way a killed process does (both sockets closed at once); returns the
/// rewritten URL and the relay task.
async fn relay(url: &str) -> (String, JoinHandle<()>) {
    let rest = url.trim_start_matches("http://");
    let (upstream, path) = rest.split_once('/').expect("url path");
    let upstream = upstream.to_string();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind relay");
    let addr = l.local_addr().expect("relay address");
    let h = tokio::spawn(async move {
        let (mut a, _) = l.accept().await.expect("relay accept");
        let mut b = tokio::net::TcpStream::connect(&upstream)
            .await
            .expect("relay connect");
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
    (format!("http://{addr}/{path}"), h)
}

/// `crustctl -r unix://SOCK ARGS...` as a command, stdio piped.
fn crustctl(d: &crust_e2e::daemon::Crustd, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(crust_e2e::workspace_bin("crust-ctl", "crustctl"));
    c.arg("--runtime-endpoint")
        .arg(format!("unix://{}", d.socket().display()))
        .arg("--config")
        .arg("/nonexistent/crictl.yaml")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// Runs crustctl with `input` on its stdin; returns (stdout, stderr, exit code).
fn crustctl_with_input(
    d: &crust_e2e::daemon::Crustd,
    args: &[&str],
    input: &[u8],
) -> (String, String, i32) {
    use std::io::Write as _;
    let mut child = crustctl(d, args).spawn().expect("run crustctl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write crustctl stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("crustctl output");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

async fn exec_url(
    rt: &mut pods::Runtime,
    id: &str,
    cmd: Vec<String>,
    tty: bool,
    stdin: bool,
    stderr: bool,
) -> Result<String, tonic::Status> {
    Ok(rt
        .exec(kc::ExecRequest {
            container_id: id.into(),
            cmd,
            tty,
            stdin,
            stdout: true,
            stderr,
        })
        .await?
        .into_inner()
        .url)
}

/// A pod with one long-running busybox container; returns (pod, container).
async fn sleeper(
    rt: &mut pods::Runtime,
    logs: &tempfile::TempDir,
    name: &str,
    image: &str,
    cfg: impl FnOnce(&mut kc::ContainerConfig),
) -> (String, String, kc::PodSandboxConfig) {
    let pc = pod_config(name, logs.path().to_str().expect("utf-8 log dir"));
    let pod = pods::run_pod(rt, &pc).await.expect("RunPodSandbox");
    let mut c = container_config(name, image, &["/bin/sleep", "1000"]);
    cfg(&mut c);
    let id = pods::run_container(rt, &pod, &pc, c)
        .await
        .expect("create+start");
    (pod, id, pc)
}

fn assert_no_session_files(d: &crust_e2e::daemon::Crustd) {
    for sub in ["state/exec", "state/attach"] {
        let dir = d.dir.path().join(sub);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            left.is_empty(),
            "left behind in {}: {left:?}",
            dir.display()
        );
    }
}
