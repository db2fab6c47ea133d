//! Launching a pod's shim: the address it serves (derived from the pod id the way
//! crust-shim's own `start` bootstrap derives it) and the `serve` process crustd spawns
//! with the already-bound socket as fd 3.

use std::path::PathBuf;

use super::pspawn;
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
    /// The ttrpc socket where crustd takes the shims' task events (their
    /// `TTRPC_ADDRESS`, as containerd ≥ 1.5 sets it; see [`super::events`]).
    pub events: PathBuf,
}

/// The address of `pod_id`'s shim, as the shim's `start` bootstrap derives it (the
/// contract's [`crust_shim_contract::socket_path`] with the pod id as group).
pub fn address_for(cfg: &ShimConfig, pod_id: &str) -> String {
    crust_shim_contract::address(&crust_shim_contract::socket_path(
        &cfg.state_dir,
        &cfg.address,
        NAMESPACE,
        pod_id,
    ))
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
    if sock.as_os_str().len() > crust_shim_contract::MAX_SOCKET_PATH {
        return Err(RuntimeError::ShimStart {
            id: pod_id.into(),
            message: format!(
                "socket path {} is longer than {} bytes",
                sock.display(),
                crust_shim_contract::MAX_SOCKET_PATH
            ),
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
            env_set: &[("TTRPC_ADDRESS", cfg.events.as_os_str())],
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

/// Cleans up container `id` after its shim died, with the shim binary's `delete`
/// bootstrap (containerd's way): the runtime's `delete --force` (kills what is left of the
/// container, removes its cgroup and runtime state) and the unmount of its rootfs. Waits
/// up to `limit`; returns whether the bootstrap ran to its end.
pub async fn delete_without_shim(
    cfg: &ShimConfig,
    id: &str,
    bundle: &std::path::Path,
    limit: std::time::Duration,
) -> bool {
    use std::process::Stdio;
    let mut cmd = tokio::process::Command::new(&cfg.binary);
    cmd.arg("-namespace")
        .arg(NAMESPACE)
        .arg("-id")
        .arg(id)
        .arg("-bundle")
        .arg(bundle)
        .arg("-state-dir")
        .arg(&cfg.state_dir)
        .arg("-runtime")
        .arg(&cfg.runtime)
        .arg("-runtime-root")
        .arg(&cfg.runtime_root)
        .arg("delete")
        .current_dir(if bundle.is_dir() {
            bundle
        } else {
            std::path::Path::new("/")
        })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.status()).await {
        Ok(Ok(st)) => st.success(),
        Ok(Err(e)) => {
            tracing::warn!(container = %id, error = %e, "running the shim's delete");
            false
        }
        Err(_) => {
            tracing::warn!(container = %id, "the shim's delete did not finish in time");
            false
        }
    }
}
