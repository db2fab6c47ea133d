//! Test harness: busybox bundles in temp dirs, real shims started through `start`, and
//! ttrpc clients. Needs root (skips with a message otherwise). The OCI runtime is
//! `$CRUST_TEST_RUNTIME` (e.g. `runc`), default the workspace's `crust-runc`.
//!
//! Everything a test creates is cleaned up in Drop: containers are killed and deleted
//! through the runtime, shims are killed, cgroups and temp dirs removed.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::TaskClient;
use protobuf::well_known_types::any::Any;
use serde_json::json;

pub const NS: &str = "crust-test";

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping: needs root");
    }
    root
}

/// The OCI runtime the tests' shims run: `$CRUST_TEST_RUNTIME` (e.g. `runc`), else the
/// workspace's `crust-runc` next to the test executable, built on first use if absent.
pub fn runtime() -> String {
    static RUNTIME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            if let Ok(r) = std::env::var("CRUST_TEST_RUNTIME") {
                return r;
            }
            // target/<profile>/deps/<test> -> target/<profile>/crust-runc
            let exe = std::env::current_exe().unwrap();
            let bin = exe.parent().unwrap().parent().unwrap().join("crust-runc");
            if !bin.is_file() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let st = Command::new(cargo)
                    .args(["build", "-p", "crust-runc", "--bin", "crust-runc"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .unwrap();
                assert!(st.success(), "building crust-runc failed");
            }
            assert!(bin.is_file(), "no crust-runc at {}", bin.display());
            bin.display().to_string()
        })
        .clone()
}

pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_crust-shim"))
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bundle: `<dir>/config.json` and a busybox rootfs.
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub spec: serde_json::Value,
}

/// Spec options for a test container.
#[derive(Default, Clone)]
pub struct SpecOpts {
    pub terminal: bool,
    pub memory_limit: Option<i64>,
    pub sandbox_id: Option<String>,
}

impl Bundle {
    pub fn new(root: &Path, args: &[&str], o: &SpecOpts) -> Bundle {
        let id = unique("c");
        let dir = root.join(&id);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        copy_executable("/bin/busybox", &rootfs.join("bin/busybox"));
        for app in [
            "sh", "echo", "sleep", "cat", "tail", "head", "tr", "printf", "stty", "true", "false",
            "ls", "read", "kill", "yes", "wc",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).unwrap();
        }
        let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
        if let Some(limit) = o.memory_limit {
            resources["memory"] = json!({"limit": limit, "swap": limit});
        }
        let mut annotations = serde_json::Map::new();
        if let Some(s) = &o.sandbox_id {
            annotations.insert("io.kubernetes.cri.sandbox-id".into(), json!(s));
        }
        let spec = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": o.terminal,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_KILL", "CAP_SETUID", "CAP_SETGID"],
                    "effective": ["CAP_KILL", "CAP_SETUID", "CAP_SETGID"],
                    "permitted": ["CAP_KILL", "CAP_SETUID", "CAP_SETGID"]
                },
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "shimtest",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "annotations": annotations,
            "linux": {
                // Flat and unique: a shared parent would be removed by one test's
                // cleanup while another test's runtime creates its child under it.
                "cgroupsPath": format!("/crust-shim-test-{id}"),
                "resources": resources,
                "namespaces": [
                    {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                    {"type": "network"}
                ],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        Bundle { id, dir, spec }
    }
}

/// A running shim and a client to it. Drop kills and deletes everything.
pub struct Shim {
    pub tmp: tempfile::TempDir,
    pub address: String,
    pub client: TaskClient,
    pub ids: Vec<String>,
    pub events: PathBuf,
    pub state_dir: PathBuf,
    /// Shim processes to kill on drop.
    pub pids: Vec<u32>,
    /// The OCI runtime the shim runs (and Drop deletes leftovers with).
    pub runtime: String,
}

pub fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(Duration::from_secs(30).as_nanos() as i64)
}

/// Starts (or joins) the shim of `bundle` with the `start` subcommand.
pub fn start_shim(state_dir: &Path, events: &Path, bundle: &Bundle) -> String {
    start_shim_env(state_dir, events, bundle, None)
}

/// As [`start_shim`]; `ttrpc_events` is passed as `TTRPC_ADDRESS` (events over ttrpc).
pub fn start_shim_env(
    state_dir: &Path,
    events: &Path,
    bundle: &Bundle,
    ttrpc_events: Option<&str>,
) -> String {
    start_shim_runtime(state_dir, events, bundle, ttrpc_events, &runtime())
}

/// As [`start_shim_env`], with `runtime` as the shim's OCI runtime.
pub fn start_shim_runtime(
    state_dir: &Path,
    events: &Path,
    bundle: &Bundle,
    ttrpc_events: Option<&str>,
    runtime: &str,
) -> String {
    let mut cmd = Command::new(shim_bin());
    match ttrpc_events {
        Some(a) => cmd.env("TTRPC_ADDRESS", a),
        None => cmd.env_remove("TTRPC_ADDRESS"),
    };
    let out = cmd
        .args(["-namespace", NS, "-address", "/run/crust-test-none.sock"])
        .args([
            "-publish-binary",
            events.with_extension("sh").to_str().unwrap(),
        ])
        .args(["-id", &bundle.id, "-state-dir", state_dir.to_str().unwrap()])
        .args(["-runtime", runtime])
        .arg("start")
        .current_dir(&bundle.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub async fn connect(address: &str) -> TaskClient {
    let c = ttrpc::asynchronous::Client::connect(address).await.unwrap();
    TaskClient::new(c)
}

impl Shim {
    /// A temp dir with the publish script; the shim itself starts with the first bundle.
    pub async fn start(bundle_args: &[&str], o: &SpecOpts) -> (Shim, Bundle) {
        Shim::start_with_runtime(bundle_args, o, &runtime()).await
    }

    /// As [`Shim::start`], the shim running `runtime` as its OCI runtime.
    pub async fn start_with_runtime(
        bundle_args: &[&str],
        o: &SpecOpts,
        runtime: &str,
    ) -> (Shim, Bundle) {
        let tmp = tempfile::Builder::new()
            .prefix("crust-shim-")
            .tempdir_in("/tmp")
            .unwrap();
        let state_dir = tmp.path().join("state");
        let events = tmp.path().join("events");
        let script = events.with_extension("sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncat > /dev/null\necho \"$5\" >> {}\n",
                events.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = Bundle::new(tmp.path(), bundle_args, o);
        let address = start_shim_runtime(&state_dir, &events, &bundle, None, runtime);
        let client = connect(&address).await;
        let pid = client
            .connect(ctx(), &api::ConnectRequest::new())
            .await
            .unwrap()
            .shim_pid;
        (
            Shim {
                tmp,
                address,
                client,
                ids: vec![],
                events,
                state_dir,
                pids: vec![pid],
                runtime: runtime.to_string(),
            },
            bundle,
        )
    }

    pub fn bundle(&self, args: &[&str], o: &SpecOpts) -> Bundle {
        Bundle::new(self.tmp.path(), args, o)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub async fn create(
        &mut self,
        b: &Bundle,
        stdio: [&str; 3],
        terminal: bool,
    ) -> ttrpc::Result<u32> {
        let mut r = api::CreateTaskRequest::new();
        r.id = b.id.clone();
        r.bundle = b.dir.display().to_string();
        r.stdin = stdio[0].into();
        r.stdout = stdio[1].into();
        r.stderr = stdio[2].into();
        r.terminal = terminal;
        let resp = self.client.create(ctx(), &r).await?;
        self.ids.push(b.id.clone());
        Ok(resp.pid)
    }

    pub async fn start_task(&self, id: &str, exec_id: &str) -> ttrpc::Result<u32> {
        let mut r = api::StartRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        Ok(self.client.start(ctx(), &r).await?.pid)
    }

    pub async fn state(&self, id: &str, exec_id: &str) -> ttrpc::Result<api::StateResponse> {
        let mut r = api::StateRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        self.client.state(ctx(), &r).await
    }

    pub async fn wait(&self, id: &str, exec_id: &str) -> ttrpc::Result<u32> {
        let mut r = api::WaitRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        Ok(self.client.wait(ctx(), &r).await?.exit_status)
    }

    pub async fn kill(&self, id: &str, exec_id: &str, sig: u32) -> ttrpc::Result<()> {
        let mut r = api::KillRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.signal = sig;
        self.client.kill(ctx(), &r).await.map(drop)
    }

    pub async fn delete(&self, id: &str, exec_id: &str) -> ttrpc::Result<api::DeleteResponse> {
        let mut r = api::DeleteRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        self.client.delete(ctx(), &r).await
    }

    /// The status of a task (`exec_id` empty) or of one of its execs; panics when the shim
    /// does not know it.
    pub async fn status(&self, id: &str, exec_id: &str) -> api::Status {
        let st = self.state(id, exec_id).await.unwrap();
        st.status.enum_value_or_default()
    }

    /// Creates `b` without stdio and starts it; returns its pid.
    pub async fn run(&mut self, b: &Bundle) -> u32 {
        let pid = self.create(b, ["", "", ""], false).await.unwrap();
        self.start_task(&b.id, "").await.unwrap();
        pid
    }

    /// SIGKILL, Wait and Delete of a task: how most tests end.
    pub async fn kill_and_delete(&self, id: &str) {
        self.kill(id, "", 9).await.unwrap();
        self.wait(id, "").await.unwrap();
        self.delete(id, "").await.unwrap();
    }

    pub async fn pause(&self, id: &str) -> ttrpc::Result<()> {
        let mut r = api::PauseRequest::new();
        r.id = id.into();
        self.client.pause(ctx(), &r).await.map(drop)
    }

    pub async fn resume(&self, id: &str) -> ttrpc::Result<()> {
        let mut r = api::ResumeRequest::new();
        r.id = id.into();
        self.client.resume(ctx(), &r).await.map(drop)
    }

    pub async fn pids(&self, id: &str) -> api::PidsResponse {
        let mut r = api::PidsRequest::new();
        r.id = id.into();
        self.client.pids(ctx(), &r).await.unwrap()
    }

    pub async fn resize(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> ttrpc::Result<()> {
        let mut r = api::ResizePtyRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.width = width;
        r.height = height;
        self.client.resize_pty(ctx(), &r).await.map(drop)
    }

    /// Closes the stdin of a task or exec (CloseIO with `stdin` set).
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> ttrpc::Result<()> {
        let mut r = api::CloseIORequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.stdin = true;
        self.client.close_io(ctx(), &r).await.map(drop)
    }

    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        args: &[&str],
        stdio: [&str; 3],
        terminal: bool,
    ) -> ttrpc::Result<()> {
        let spec = json!({
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        });
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
        any.value = serde_json::to_vec(&spec).unwrap();
        let mut r = api::ExecProcessRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.terminal = terminal;
        r.stdin = stdio[0].into();
        r.stdout = stdio[1].into();
        r.stderr = stdio[2].into();
        r.spec = Some(any).into();
        self.client.exec(ctx(), &r).await.map(drop)
    }

    pub async fn shim_pid(&self) -> u32 {
        self.client
            .connect(ctx(), &api::ConnectRequest::new())
            .await
            .unwrap()
            .shim_pid
    }

    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `topic` has been published `n` times.
    pub async fn wait_event(&self, topic: &str, n: usize) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.events().iter().filter(|e| *e == topic).count() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

pub fn code(e: &ttrpc::Error) -> ttrpc::Code {
    match e {
        ttrpc::Error::RpcStatus(s) => s.code(),
        other => panic!("not an rpc status: {other:?}"),
    }
}

/// The code of a request that must fail; panics when it succeeded.
pub fn err_code<T: std::fmt::Debug>(r: ttrpc::Result<T>) -> ttrpc::Code {
    code(&r.unwrap_err())
}

/// Polls `f` until it returns true (10 s).
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

impl Drop for Shim {
    fn drop(&mut self) {
        let root = self.state_dir.join("runtime").join(NS);
        for id in &self.ids {
            let _ = Command::new(&self.runtime)
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", id])
                .output();
        }
        for pid in &self.pids {
            // Only while the pid is still a crust-shim: an exited shim's pid may have been
            // reused by another test's process.
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if !exe.to_string_lossy().contains("crust-shim") {
                continue;
            }
            // SAFETY: kill has no memory-safety preconditions; the pid is our shim's.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
        for id in &self.ids {
            for c in [
                "memory", "cpu", "cpuacct", "pids", "devices", "freezer", "blkio", "cpuset",
                "systemd", "unified",
            ] {
                let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}/crust-shim-test-{id}"));
            }
        }
        // A publish script started by the shim may still append to the events file
        // while the temp dir is being removed: retry until it is gone.
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

/// Parses CRI log records: (timestamp, stream, tag, text).
pub fn cri_records(text: &str) -> Vec<(String, String, String, String)> {
    text.lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let ts = it.next().unwrap().to_string();
            let stream = it.next().unwrap().to_string();
            let tag = it.next().unwrap().to_string();
            let text = it.next().unwrap_or("").to_string();
            (ts, stream, tag, text)
        })
        .collect()
}

pub type Events = HashMap<String, usize>;

impl Shim {
    pub async fn reconnect(address: &str) -> TaskClient {
        connect(address).await
    }
}

/// Copies the executable `from` to `to` in a child process (`cp`), never through a write fd
/// of this test process: its test threads fork all the time, and a child forked while our
/// write fd was open keeps it until it execs, so exec of the copy (the container's busybox)
/// failed with ETXTBSY under load (no_host_fd_reaches_the_container).
pub fn copy_executable(from: &str, to: &std::path::Path) {
    let st = std::process::Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp {from} {}: {st}", to.display());
}
