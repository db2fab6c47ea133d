//! The daemon <-> shim contract (`crust-shim-contract`) run from both sides: crustd's own
//! shim client (`crust_daemon::runtime::shim`) derives the address, launches and calls a
//! real crust-shim; the shim's `start` bootstrap derives the same address from a bundle;
//! the version, the error kinds and the attach request cross as the contract says. Root
//! only (the shim reaps as subreaper and runs containers).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use containerd_shim_protos::api;
use crust_daemon::runtime::shim::{address_for, launch, Shim as Client, ShimConfig, NAMESPACE};
use crust_daemon::{error::Kind as _, ErrorKind};
use crust_shim_contract::{AttachRequest, Kind, ATTACH_ANNOTATION, SANDBOX_ID_ANNOTATION};

/// crustd's view of a temp state dir, and cleanup of what the test started.
struct Daemon {
    tmp: tempfile::TempDir,
    cfg: ShimConfig,
    containers: Vec<String>,
    shims: Vec<u32>,
}

impl Daemon {
    fn new() -> Daemon {
        let tmp = tempfile::Builder::new()
            .prefix("crust-arch-contract-")
            .tempdir_in("/tmp")
            .unwrap();
        let cfg = ShimConfig {
            binary: shim_bin(),
            runtime: runtime().into(),
            state_dir: tmp.path().join("shims"),
            runtime_root: tmp.path().join("runc"),
            address: tmp.path().join("crustd.sock").display().to_string(),
        };
        Daemon {
            tmp,
            cfg,
            containers: vec![],
            shims: vec![],
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let root = crust_shim_contract::runtime_state_root(&self.cfg.runtime_root, NAMESPACE);
        for id in &self.containers {
            let _ = Command::new(runtime())
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", id])
                .output();
            for c in [
                "memory", "cpu", "cpuacct", "pids", "devices", "freezer", "blkio",
            ] {
                let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}/crust-shim-test-{id}"));
            }
        }
        for pid in &self.shims {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.to_string_lossy().contains("crust-shim") {
                // SAFETY: kill has no memory-safety preconditions; the pid is our shim's.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
        }
        for _ in 0..40 {
            match std::fs::remove_dir_all(self.tmp.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => break,
            }
        }
    }
}

/// The shim's own `start` bootstrap, run in `bundle` as containerd would run it.
fn shim_start(cfg: &ShimConfig, id: &str, bundle: &Path) -> String {
    let out = Command::new(shim_bin())
        .env_remove("TTRPC_ADDRESS")
        .args(["-namespace", NAMESPACE, "-address", &cfg.address, "-id", id])
        .arg("-state-dir")
        .arg(&cfg.state_dir)
        .args(["-runtime", &runtime()])
        .arg("start")
        .current_dir(bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn both_sides_agree_on_address_version_and_error_kinds() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::new();
    let pod = unique("pod");
    let want = address_for(&d.cfg, &pod);

    // The shim side: a bundle of one of the pod's containers, annotated as crustd does.
    let bundle = d.tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let spec = serde_json::json!({"annotations": {SANDBOX_ID_ANNOTATION: pod}});
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    assert_eq!(shim_start(&d.cfg, "c1", &bundle), want);

    // The daemon side finds that shim: launch reuses the live one at the same address.
    assert_eq!(launch(&d.cfg, &pod).unwrap(), want);
    let c = Client::connect(&want, &pod).await.unwrap();
    d.shims.push(c.ping(&pod).await.unwrap()); // the version check passes

    // Error kinds: raised in the shim, read back by crustd.
    let e = c.state("no-such-container").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = c
        .update("no-such-container", None, &[(ATTACH_ANNOTATION, "{}")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let e = c.start("no-such-container", "").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // Checkpoint (through a plain Task client, as containerd calls it): a request without
    // an absolute image path is invalid, an unknown container not found.
    let raw = connect(&want).await;
    let e = raw
        .checkpoint(ctx(), &api::CheckpointTaskRequest::new())
        .await
        .unwrap_err();
    assert_eq!(Kind::of_error(&e), Kind::InvalidArgument, "{e:?}");
    let mut r = api::CheckpointTaskRequest::new();
    r.id = "no-such-container".into();
    r.path = "/nonexistent/images".into();
    let e = raw.checkpoint(ctx(), &r).await.unwrap_err();
    assert_eq!(Kind::of_error(&e), Kind::NotFound, "{e:?}");
    c.shutdown().await;
}

#[tokio::test]
async fn a_daemon_launched_shim_runs_a_container_and_serves_an_attach_request() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::new();
    let pod = unique("pod");
    let address = launch(&d.cfg, &pod).unwrap();
    let c = Client::connect(&address, &pod).await.unwrap();
    d.shims.push(c.ping(&pod).await.unwrap());

    let b = Bundle::new(
        d.tmp.path(),
        &["sh", "-c", "read go; echo out; echo err >&2"],
        &SpecOpts {
            sandbox_id: Some(pod.clone()),
            ..SpecOpts::default()
        },
    );
    d.containers.push(b.id.clone());
    // crustd's container stdin FIFO, held open here as the gate.
    let stdin = b.dir.join("stdin");
    nix::unistd::mkfifo(&stdin, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut gate = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&stdin)
        .unwrap();
    let log = d.tmp.path().join("c.log");
    let stdout = format!("crilog://{}", log.display());
    c.create(&b.id, &b.dir, &[], &stdout, true, false, false, None)
        .await
        .unwrap();
    c.start(&b.id, "").await.unwrap();

    // Attach: FIFOs with their read ends open, then the request crustd sends.
    let fifo = |name: &str| -> (PathBuf, std::fs::File) {
        let p = d.tmp.path().join(name);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .unwrap();
        (p, f)
    };
    let (out_path, out) = fifo("a-out");
    let (err_path, err) = fifo("a-err");
    let req = AttachRequest {
        stdout: Some(out_path.display().to_string()),
        stderr: Some(err_path.display().to_string()),
    };
    c.update(&b.id, None, &[(ATTACH_ANNOTATION, &req.encode())])
        .await
        .unwrap();
    gate.write_all(b"go\n").unwrap();
    assert_eq!(c.wait(&b.id, "").await.unwrap().status, 0);
    let read = |f: std::fs::File| {
        tokio::task::spawn_blocking(move || {
            let mut f = f;
            let mut v = Vec::new();
            // EOF comes once the shim closes the FIFO; EAGAIN while it is still open.
            let until = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let mut buf = [0u8; 256];
                match f.read(&mut buf) {
                    Ok(0) => return v,
                    Ok(n) => v.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(std::time::Instant::now() < until, "no EOF");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
    };
    assert_eq!(read(out).await.unwrap(), b"out\n");
    assert_eq!(read(err).await.unwrap(), b"err\n");
    c.delete(&b.id, "").await.unwrap();
    c.shutdown().await;
}
