//! The client side of crust-shim: launching a pod's shim (at RunPodSandbox, see
//! [`launch`]) and calling its Task API over ttrpc.
//!
//! One shim per pod, at the address [`address_for`] derives from the pod id (the same
//! one crust-shim's own `start` bootstrap derives from the bundles'
//! `io.kubernetes.cri.sandbox-id` annotation). Shim sockets live under
//! `<state>/shims/s/` (never abstract). A shim with no containers lives until it is
//! told to shut down; it exits by itself when its last container is deleted. Events are not forwarded: exits are learnt
//! through `Wait`, which also works after a reconnect (it answers at once for a process
//! that exited while nobody was connected).

mod pspawn;

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::TaskClient;
use protobuf::well_known_types::any::Any;

use crate::error::ErrorKind;
use crate::runtime::error::{Result, RuntimeError};

/// Namespace the shims are started in.
pub const NAMESPACE: &str = "crust";

/// How crustd starts shims.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// The shim binary.
    pub binary: PathBuf,
    /// The OCI runtime binary the shim runs.
    pub runtime: PathBuf,
    /// Shim state dir (sockets): `<state>/shims`.
    pub state_dir: PathBuf,
    /// The runtime's `--root`: `<state>/runc`.
    pub runtime_root: PathBuf,
    /// crustd's own socket (passed as `-address`).
    pub address: String,
}

/// The address of `pod_id`'s shim, as the shim's `start` bootstrap derives it:
/// `unix://<state-dir>/s/<sha256(address/namespace/pod)[..32]>.sock`.
pub fn address_for(cfg: &ShimConfig, pod_id: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(cfg.address.as_bytes());
    h.update(b"/");
    h.update(NAMESPACE.as_bytes());
    h.update(b"/");
    h.update(pod_id.as_bytes());
    let hex = hex::encode(h.finalize());
    format!(
        "unix://{}",
        cfg.state_dir
            .join("s")
            .join(format!("{}.sock", &hex[..32]))
            .display()
    )
}

/// Launches `pod_id`'s shim daemon and returns its address without waiting for it to
/// be up: crustd binds the socket itself and hands it (as fd 3) to `<shim> ... serve` in
/// its own session, the contract of crust-shim's `start` bootstrap (which would cost one
/// more exec of the shim binary). Connections made before the shim is ready wait in the
/// socket's listen backlog, so the shim's start-up overlaps with whatever the caller
/// does next. If a live shim already serves the address, it is reused.
///
/// The child is reaped by a background task; it outlives crustd (own session, never
/// killed on drop).
pub fn launch(cfg: &ShimConfig, pod_id: &str) -> Result<String> {
    use std::os::unix::net::{UnixListener, UnixStream};
    let address = address_for(cfg, pod_id);
    let sock = PathBuf::from(address.trim_start_matches("unix://"));
    let err = |what: &str, e: std::io::Error| RuntimeError::ShimStart {
        id: pod_id.into(),
        message: format!("{what} {}: {e}", sock.display()),
    };
    if sock.as_os_str().len() > 107 {
        return Err(RuntimeError::ShimStart {
            id: pod_id.into(),
            message: format!("socket path {} is longer than 107 bytes", sock.display()),
        });
    }
    if let Some(dir) = sock.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err("create dir of", e))?;
    }
    let listener = match UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(&sock).is_ok() {
                return Ok(address);
            }
            let _ = std::fs::remove_file(&sock);
            UnixListener::bind(&sock).map_err(|e| err("bind", e))?
        }
        Err(e) => return Err(err("bind", e)),
    };
    let r = (|| {
        std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| err("chmod", e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sock.with_extension("log"))
            .map_err(|e| err("open log of", e))?;
        let args: Vec<std::ffi::OsString> = [
            "-namespace".as_ref(),
            NAMESPACE.as_ref(),
            "-address".as_ref(),
            cfg.address.as_ref(),
            "-id".as_ref(),
            pod_id.as_ref(),
            "-state-dir".as_ref(),
            cfg.state_dir.as_os_str(),
            "-runtime".as_ref(),
            cfg.runtime.as_os_str(),
            "-runtime-root".as_ref(),
            cfg.runtime_root.as_os_str(),
            // crustd owns this shim's lifetime (Shutdown at pod stop/removal and in
            // recovery): it must not exit between a pod's last RemoveContainer and its next
            // CreateContainer.
            "-keep-empty".as_ref(),
            "serve".as_ref(),
        ]
        .iter()
        .map(|a: &&std::ffi::OsStr| a.to_os_string())
        .collect();
        let pid = pspawn::spawn(&pspawn::Child {
            program: &cfg.binary,
            args: &args,
            stderr: std::os::fd::AsFd::as_fd(&log),
            fd3: std::os::fd::AsFd::as_fd(&listener),
            env_remove: &["TTRPC_ADDRESS"],
        })
        .map_err(|e| RuntimeError::ShimStart {
            id: pod_id.into(),
            message: format!("exec {}: {e}", cfg.binary.display()),
        })?;
        pspawn::reap_in_background(pid, pod_id.to_string());
        Ok(())
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&sock);
        return Err(e);
    }
    Ok(address)
}

/// A connection to one shim.
#[derive(Clone)]
pub struct Shim {
    client: TaskClient,
}

impl std::fmt::Debug for Shim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shim")
    }
}

fn ctx(timeout: Option<Duration>) -> ttrpc::context::Context {
    match timeout {
        Some(t) => ttrpc::context::with_timeout(t.as_nanos() as i64),
        None => ttrpc::context::Context::default(),
    }
}

const CALL: Option<Duration> = Some(Duration::from_secs(60));

fn shim_err<'a>(op: &'static str, id: &'a str) -> impl FnOnce(ttrpc::Error) -> RuntimeError + 'a {
    move |e| {
        let (code, message) = match &e {
            ttrpc::Error::RpcStatus(s) => {
                let code = match s.code() {
                    ttrpc::Code::NOT_FOUND => ErrorKind::NotFound,
                    ttrpc::Code::ALREADY_EXISTS => ErrorKind::AlreadyExists,
                    ttrpc::Code::INVALID_ARGUMENT => ErrorKind::InvalidArgument,
                    ttrpc::Code::FAILED_PRECONDITION => ErrorKind::FailedPrecondition,
                    ttrpc::Code::DEADLINE_EXCEEDED => ErrorKind::DeadlineExceeded,
                    ttrpc::Code::UNAVAILABLE => ErrorKind::Unavailable,
                    _ => ErrorKind::Internal,
                };
                (code, s.message().to_string())
            }
            other => (ErrorKind::Unavailable, other.to_string()),
        };
        RuntimeError::Shim {
            op,
            id: id.to_string(),
            code,
            message,
        }
    }
}

/// Exit of a process: status and unix nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Exit status (128+signal when killed).
    pub status: u32,
    /// When, unix nanoseconds.
    pub at: i64,
}

impl Shim {
    /// Connects to `address` (`unix:///path`).
    pub async fn connect(address: &str, id: &str) -> Result<Shim> {
        let c = ttrpc::asynchronous::Client::connect(address)
            .await
            .map_err(shim_err("connect", id))?;
        Ok(Shim {
            client: TaskClient::new(c),
        })
    }

    /// The shim's pid (checks it is alive).
    pub async fn ping(&self, id: &str) -> Result<u32> {
        // An empty id asks only for the shim's pid: a liveness check.
        let r = api::ConnectRequest::new();
        let c = self
            .client
            .connect(ctx(Some(Duration::from_secs(5))), &r)
            .await
            .map_err(shim_err("connect", id))?;
        Ok(c.shim_pid)
    }

    /// Creates the task of container `id`.
    pub async fn create(
        &self,
        id: &str,
        bundle: &Path,
        rootfs: &[crate::snapshots::Mount],
        stdout: &str,
        stdin: bool,
        terminal: bool,
    ) -> Result<u32> {
        let mut r = api::CreateTaskRequest::new();
        r.id = id.into();
        r.bundle = bundle.display().to_string();
        r.rootfs = rootfs
            .iter()
            .map(|m| {
                let mut pm = api::Mount::new();
                pm.type_ = m.kind.clone();
                pm.source = m.source.clone();
                pm.options = m.options.clone();
                pm
            })
            .collect();
        r.stdout = stdout.into();
        r.stderr = if terminal {
            String::new()
        } else {
            stdout.into()
        };
        if stdin {
            r.stdin = bundle.join("stdin").display().to_string();
        }
        r.terminal = terminal;
        let resp = self
            .client
            .create(ctx(CALL), &r)
            .await
            .map_err(shim_err("create", id))?;
        Ok(resp.pid)
    }

    /// Starts process `exec_id` (empty: the init) of `id`; returns its pid.
    pub async fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        let mut r = api::StartRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        let resp = self
            .client
            .start(ctx(CALL), &r)
            .await
            .map_err(shim_err("start", id))?;
        Ok(resp.pid)
    }

    /// Waits for process `exec_id` of `id` to exit (no timeout).
    pub async fn wait(&self, id: &str, exec_id: &str) -> Result<Exit> {
        let mut r = api::WaitRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        let resp = self
            .client
            .wait(ctx(None), &r)
            .await
            .map_err(shim_err("wait", id))?;
        let at = resp
            .exited_at
            .as_ref()
            .map(|t| t.seconds * 1_000_000_000 + t.nanos as i64)
            .unwrap_or_else(crate::runtime::now);
        Ok(Exit {
            status: resp.exit_status,
            at,
        })
    }

    /// State of `id`'s init: (status, pid, exit).
    pub async fn state(&self, id: &str) -> Result<api::StateResponse> {
        let mut r = api::StateRequest::new();
        r.id = id.into();
        self.client
            .state(ctx(CALL), &r)
            .await
            .map_err(shim_err("state", id))
    }

    /// Sends `signal` to process `exec_id` of `id` (`all`: every process).
    pub async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let mut r = api::KillRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.signal = signal;
        r.all = all;
        self.client
            .kill(ctx(CALL), &r)
            .await
            .map_err(shim_err("kill", id))?;
        Ok(())
    }

    /// Deletes process `exec_id` (empty: the container) of `id`.
    pub async fn delete(&self, id: &str, exec_id: &str) -> Result<()> {
        let mut r = api::DeleteRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        self.client
            .delete(ctx(CALL), &r)
            .await
            .map_err(shim_err("delete", id))?;
        Ok(())
    }

    /// Adds exec `exec_id` running `process` (OCI process JSON) in `id`, with no stdin and
    /// no terminal (ExecSync).
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: Vec<u8>,
        stdout: &str,
        stderr: &str,
    ) -> Result<()> {
        self.exec_stdio(id, exec_id, process, "", stdout, stderr, false)
            .await
    }

    /// Adds exec `exec_id` of `id` with fifo stdio (crustd's streaming exec): `stdin`
    /// empty for none, `terminal` for a pty (then only `stdout` carries output).
    #[allow(clippy::too_many_arguments)]
    pub async fn exec_stdio(
        &self,
        id: &str,
        exec_id: &str,
        process: Vec<u8>,
        stdin: &str,
        stdout: &str,
        stderr: &str,
        terminal: bool,
    ) -> Result<()> {
        let mut r = api::ExecProcessRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.stdin = stdin.into();
        r.stdout = stdout.into();
        r.stderr = stderr.into();
        r.terminal = terminal;
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
        any.value = process;
        r.spec = Some(any).into();
        self.client
            .exec(ctx(CALL), &r)
            .await
            .map_err(shim_err("exec", id))?;
        Ok(())
    }

    /// Resizes the pty of process `exec_id` (empty: the init) of `id`.
    pub async fn resize_pty(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        let mut r = api::ResizePtyRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.width = width;
        r.height = height;
        self.client
            .resize_pty(ctx(CALL), &r)
            .await
            .map_err(shim_err("resize pty", id))?;
        Ok(())
    }

    /// Closes the stdin of process `exec_id` (empty: the init) of `id`.
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        let mut r = api::CloseIORequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.stdin = true;
        self.client
            .close_io(ctx(CALL), &r)
            .await
            .map_err(shim_err("close io", id))?;
        Ok(())
    }

    /// Updates resources (OCI LinuxResources JSON) and/or annotations of `id`.
    pub async fn update(
        &self,
        id: &str,
        resources: Option<Vec<u8>>,
        annotations: &[(&str, &str)],
    ) -> Result<()> {
        let mut r = api::UpdateTaskRequest::new();
        r.id = id.into();
        if let Some(res) = resources {
            let mut any = Any::new();
            any.type_url =
                "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
            any.value = res;
            r.resources = Some(any).into();
        }
        for (k, v) in annotations {
            r.annotations.insert((*k).into(), (*v).into());
        }
        self.client
            .update(ctx(CALL), &r)
            .await
            .map_err(shim_err("update", id))?;
        Ok(())
    }

    /// Asks the shim to exit once it has no containers.
    pub async fn shutdown(&self) {
        let r = api::ShutdownRequest::new();
        let _ = self
            .client
            .shutdown(ctx(Some(Duration::from_secs(5))), &r)
            .await;
    }
}
