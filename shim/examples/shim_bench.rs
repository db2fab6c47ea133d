//! Memory benchmark: N pods (one shim each, one busybox `sleep` container per pod, CRI
//! log output) through crust-shim; prints RSS and PSS per shim from
//! `/proc/<pid>/smaps_rollup`. Usage (root):
//! `shim_bench <crust-shim binary> <runtime> <N>...`. Prints `crust-shim N rss_kb pss_kb`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::TaskClient;
use serde_json::json;

fn bundle(root: &Path, id: &str) -> PathBuf {
    let dir = root.join(id);
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
    for app in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).expect("symlink");
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sh", "-c", "echo started; exec sleep 1000"], "env": ["PATH=/bin"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "annotations": {"io.kubernetes.cri.sandbox-id": id},
        "linux": {"cgroupsPath": format!("/crust-shim-bench/{id}"),
                  "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
    });
    std::fs::write(dir.join("config.json"), spec.to_string()).expect("spec");
    dir
}

fn rollup(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("Rss:"), get("Pss:"))
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(30_000_000_000)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let shim = &args[1];
    let runtime = &args[2];
    for n in args[3..].iter().map(|s| s.parse::<usize>().expect("N")) {
        let tmp = tempfile::Builder::new()
            .prefix("crust-shim-bench-")
            .tempdir_in("/tmp")
            .expect("tmp");
        let state = tmp.path().join("state");
        let mut pods = Vec::new();
        for i in 0..n {
            let id = format!("bench-{}-{n}-{i}", std::process::id());
            let dir = bundle(tmp.path(), &id);
            let out = Command::new(shim)
                .args(["-namespace", "bench", "-id", &id, "-state-dir"])
                .arg(&state)
                .args(["-runtime", runtime, "start"])
                .current_dir(&dir)
                .output()
                .expect("start");
            let addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let c = TaskClient::new(
                ttrpc::asynchronous::Client::connect(&addr)
                    .await
                    .expect("connect"),
            );
            let mut r = api::CreateTaskRequest::new();
            r.id = id.clone();
            r.bundle = dir.display().to_string();
            let log = format!("crilog://{}/{id}.log", tmp.path().display());
            r.stdout = log.clone();
            r.stderr = log;
            c.create(ctx(), &r).await.expect("create");
            let mut s = api::StartRequest::new();
            s.id = id.clone();
            c.start(ctx(), &s).await.expect("start");
            let pid = c
                .connect(ctx(), &api::ConnectRequest::new())
                .await
                .expect("connect")
                .shim_pid;
            pods.push((id, c, pid));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // BENCH_HOLD_SECS keeps the pods up for inspection (smaps, pagemap).
        if let Some(secs) = std::env::var("BENCH_HOLD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            let pids: Vec<u32> = pods.iter().map(|p| p.2).collect();
            eprintln!("holding shims {pids:?} for {secs}s");
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }

        let (mut rss, mut pss) = (0, 0);
        for (_, _, pid) in &pods {
            let (r, p) = rollup(*pid);
            rss += r;
            pss += p;
        }
        println!("crust-shim {n} {} {}", rss / n as u64, pss / n as u64);
        for (id, c, _) in &pods {
            let mut k = api::KillRequest::new();
            k.id = id.clone();
            k.signal = 9;
            let _ = c.kill(ctx(), &k).await;
            let mut w = api::WaitRequest::new();
            w.id = id.clone();
            let _ = c.wait(ctx(), &w).await;
            let mut d = api::DeleteRequest::new();
            d.id = id.clone();
            let _ = c.delete(ctx(), &d).await;
        }
        for c in [
            "memory", "cpu", "cpuacct", "pids", "devices", "freezer", "blkio", "cpuset", "systemd",
            "unified",
        ] {
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}/crust-shim-bench"));
        }
    }
}
