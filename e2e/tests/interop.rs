//! The interop suite: crustd driven by CRI clients nobody here wrote the gRPC stack of.
//! - Go: `e2e/interop/go/main.go` built offline (GOPATH mode over Debian's
//!   /usr/share/gocode) against Debian's grpc-go 1.33, with CRI stubs generated now from the
//!   k8s-cri crate's api.proto by Debian's protoc, protoc-gen-go and protoc-gen-go-grpc. It
//!   dials as kubelet 1.26 and crictl 1.26 do (the bare socket path as target with a unix
//!   dialer, so the path is the HTTP/2 `:authority`), and with a `unix://` target.
//! - Python: `e2e/interop/python/client.py` on PyPI's grpcio with default channel options
//!   (it sends the %-encoded socket path), stubs from grpcio-tools, in the venv
//!   deploy/deps.sh makes at /opt/crust-test/venv.
//!
//! Each runs a whole pod lifecycle against a local registry: pull/list/status/remove,
//! RunPodSandbox to RemovePodSandbox, ExecSync, Exec and PortForward URLs used over
//! WebSocket, Attach URL, stats, container events. The suite also checks that the clients
//! fail without the `:authority` adapter (`CRUST_AUTHORITY_FIX=0`), so it proves the adapter
//! is what makes them work.
//!
//! Ignored by plain `cargo test`; deploy/test.sh runs it as its own `interop` stage:
//! `cargo test -p crust-e2e --test interop -- --ignored`. Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crust_e2e::daemon::Crustd;
use crust_e2e::image;
use crust_e2e::pods::{config, Leftovers};
use crust_e2e::registry::Registry;
use crust_e2e::require_root;

const VENV_PYTHON: &str = "/opt/crust-test/venv/bin/python";

/// Steps every full run must report as "ok".
const STEPS: &[&str] = &[
    "Version",
    "Status",
    "GetContainerEvents",
    "PullImage",
    "ListImages",
    "ImageStatus",
    "ImageFsInfo",
    "RunPodSandbox",
    "PodSandboxStatus",
    "ListPodSandbox",
    "CreateContainer",
    "StartContainer",
    "ContainerStatus",
    "ListContainers",
    "ExecSync",
    "Exec",
    "Exec URL (WebSocket v4.channel.k8s.io)",
    "Attach",
    "PortForward",
    "PortForward URL (WebSocket, HTTP GET through it)",
    "ContainerStats",
    "ListContainerStats",
    "PodSandboxStats",
    "ListPodSandboxStats",
    "StopContainer",
    "ContainerStatus after stop",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
    "RemoveImage",
    "ListImages after remove",
    "container events",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs a build step; its stdout.
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (deploy/deps.sh installs it)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The directory of the CRI api.proto shipped in the k8s-cri crate crust builds with.
fn proto_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let meta = run(
        Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--locked",
                "--manifest-path",
            ])
            .arg(repo().join("Cargo.toml")),
        "cargo metadata",
    );
    let v: serde_json::Value = serde_json::from_str(&meta).expect("metadata JSON");
    let manifest = v["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "k8s-cri"))
        .and_then(|p| p["manifest_path"].as_str())
        .expect("k8s-cri in cargo metadata");
    let dir = Path::new(manifest)
        .parent()
        .expect("crate dir")
        .join("proto");
    assert!(dir.join("v1.proto").exists(), "{}", dir.display());
    dir
}

/// The Go client, built once per test process. Built under cargo's target tmp dir (a build
/// output, gone with `cargo clean`): under /tmp it outlived every run, 14 MB each.
fn go_client() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-go");
        let _ = std::fs::remove_dir_all(&dir);
        let src = dir.join("src");
        let main = src.join("crust-interop");
        std::fs::create_dir_all(&main).expect("GOPATH");
        std::fs::copy(repo().join("e2e/interop/go/main.go"), main.join("main.go"))
            .expect("copy main.go");
        run(
            Command::new("protoc")
                .arg("-I")
                .arg(proto_dir())
                .arg(format!("--go_out={}", src.display()))
                .arg(format!("--go-grpc_out={}", src.display()))
                .arg("v1.proto"),
            "protoc --go_out --go-grpc_out (protobuf-compiler, protoc-gen-go, protoc-gen-go-grpc)",
        );
        let bin = dir.join("crust-interop-go");
        // GOPATH mode over Debian's packaged sources: offline by construction.
        run(
            Command::new("go")
                .args(["build", "-o"])
                .arg(&bin)
                .arg(".")
                .current_dir(&main)
                .env("GO111MODULE", "off")
                .env("GOPATH", format!("{}:/usr/share/gocode", dir.display()))
                .env("GOFLAGS", "")
                .env("GOPROXY", "off"),
            "go build (golang-go, golang-google-grpc-dev)",
        );
        bin
    })
}

/// The generated Python stubs, once per test process.
fn python_stubs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-py");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("stubs dir");
        run(
            Command::new(VENV_PYTHON)
                .args(["-m", "grpc_tools.protoc", "-I"])
                .arg(proto_dir())
                .arg(format!("--python_out={}", dir.display()))
                .arg(format!("--grpc_python_out={}", dir.display()))
                .arg("v1.proto"),
            "grpc_tools.protoc (the venv deploy/deps.sh makes)",
        );
        dir
    })
}

/// A registry with busybox, a crustd (network off; `env` for it), the image name, a log dir.
struct Setup {
    image: String,
    logs: tempfile::TempDir,
    _g: Leftovers,
    crustd: Crustd,
    _reg: Registry,
}

async fn setup(env: &[(&str, &str)]) -> Setup {
    crust_e2e::workspace_bin("crust-shim", "crust-shim");
    crust_e2e::workspace_bin("crust-runc", "crust-runc");
    let reg = Registry::start();
    let img = image::busybox();
    image::push(&reg.host(), "interop/busybox", "1", &img, None).await;
    let crustd = Crustd::start_bin_env(
        &crust_e2e::workspace_bin("crust-cri", "crustd"),
        &config(),
        &std::env::temp_dir(),
        env,
    );
    Setup {
        image: format!("{}/interop/busybox:1", reg.host()),
        logs: tempfile::tempdir().expect("log dir"),
        _g: Leftovers(crustd.dir.path().to_path_buf()),
        crustd,
        _reg: reg,
    }
}

/// Runs a client (under a time limit); (exit ok, output).
fn client(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    (out.status.success(), text)
}

fn timeout_cmd(bin: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.args(["--kill-after=10", "240"]).arg(bin);
    c
}

fn assert_full_run(who: &str, ok: bool, out: &str, s: &Setup) {
    let missing: Vec<&&str> = STEPS
        .iter()
        .filter(|st| !out.lines().any(|l| l == format!("ok {st}")))
        .collect();
    assert!(
        ok && missing.is_empty(),
        "{who}: steps not ok: {missing:?}\n{out}\ncrustd log:\n{}",
        s.crustd.log()
    );
}

fn go(s: &Setup, dial: &str, version_only: bool) -> (bool, String) {
    let mut c = timeout_cmd(go_client());
    c.arg("-socket")
        .arg(s.crustd.socket())
        .args(["-dial", dial, "-image", &s.image, "-log-dir"])
        .arg(s.logs.path());
    if version_only {
        c.arg("-version-only");
    }
    client(&mut c)
}

fn python(s: &Setup, version_only: bool) -> (bool, String) {
    let mut c = timeout_cmd(Path::new(VENV_PYTHON));
    c.arg(repo().join("e2e/interop/python/client.py"))
        .arg("--socket")
        .arg(s.crustd.socket())
        .arg("--stubs")
        .arg(python_stubs())
        .args(["--image", &s.image, "--log-dir"])
        .arg(s.logs.path());
    if version_only {
        c.arg("--version-only");
    }
    client(&mut c)
}

#[tokio::test]
#[ignore = "interop stage of deploy/test.sh"]
async fn grpc_go_dialing_as_kubelet_1_26() {
    require_root!();
    let s = setup(&[]).await;
    let (ok, out) = go(&s, "path", false);
    assert_full_run("grpc-go, socket path as target", ok, &out, &s);
}

#[tokio::test]
#[ignore = "interop stage of deploy/test.sh"]
async fn grpc_go_unix_target() {
    require_root!();
    let s = setup(&[]).await;
    let (ok, out) = go(&s, "unix", false);
    assert_full_run("grpc-go, unix:// target", ok, &out, &s);
}

#[tokio::test]
#[ignore = "interop stage of deploy/test.sh"]
async fn grpcio_default_options() {
    require_root!();
    let s = setup(&[]).await;
    let (ok, out) = python(&s, false);
    assert_full_run("grpcio", ok, &out, &s);
}

#[tokio::test]
#[ignore = "interop stage of deploy/test.sh"]
async fn without_the_adapter_these_clients_fail() {
    require_root!();
    let s = setup(&[("CRUST_AUTHORITY_FIX", "0")]).await;
    let (ok, out) = go(&s, "path", true);
    assert!(
        !ok && out.contains("PROTOCOL_ERROR"),
        "grpc-go with the socket path as target should be refused by bare h2:\n{out}"
    );
    let (ok, out) = python(&s, true);
    assert!(
        !ok && out.contains("RST_STREAM"),
        "grpcio should be refused by bare h2:\n{out}"
    );
    // The unix:// target of grpc-go 1.33 sends an authority h2 accepts.
    let (ok, out) = go(&s, "unix", true);
    assert!(ok, "{out}");
}
