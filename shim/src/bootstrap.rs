//! The shim v2 bootstrap subcommands containerd (and crustd) run: `start` and `delete`.
//!
//! `start` (cwd = the bundle): finds the container's group — the pod's sandbox id from
//! the spec annotations [`GROUP_ANNOTATIONS`], else the container id — and the group's
//! socket ([`socket_path`], the daemon <-> shim contract's). If a live shim
//! already listens there, its address is reused; otherwise the socket is bound here and
//! handed (as fd 3) to a re-executed `serve` process in its own session. Either way the
//! address `unix://<path>` is printed on stdout and written to `./address`.
//!
//! `delete` (after a shim died): `runtime delete --force`, unmount the rootfs, and print a
//! protobuf DeleteResponse (exit status 137) on stdout.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::Args;

pub use crust_shim_contract::GROUP_ANNOTATIONS;

/// Errors of the bootstrap subcommands.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("reading spec {path}: {source}")]
    ReadSpec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating state dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("binding shim socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spawning shim daemon: {0}")]
    Spawn(std::io::Error),
    #[error("writing address: {0}")]
    Address(std::io::Error),
    #[error("socket path {0} is longer than 107 bytes")]
    PathTooLong(PathBuf),
}

/// The group id of the container whose bundle is `bundle`.
pub fn group_id(bundle: &Path, id: &str) -> Result<String, BootstrapError> {
    let path = bundle.join("config.json");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(id.to_string()),
        Err(source) => return Err(BootstrapError::ReadSpec { path, source }),
    };
    let spec: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
    let ann = spec.get("annotations");
    for key in GROUP_ANNOTATIONS {
        if let Some(g) = ann.and_then(|a| a.get(key)).and_then(|v| v.as_str()) {
            if !g.is_empty() {
                return Ok(g.to_string());
            }
        }
    }
    Ok(id.to_string())
}

/// Socket path of a group's shim (the contract's [`crust_shim_contract::socket_path`]).
pub fn socket_path(args: &Args, group: &str) -> PathBuf {
    crust_shim_contract::socket_path(&args.state_dir, &args.address, &args.namespace, group)
}

/// `start`: prints the address of the group's shim, starting one if needed.
pub fn start(args: &Args) -> Result<String, BootstrapError> {
    let bundle = std::env::current_dir().map_err(|source| BootstrapError::ReadSpec {
        path: PathBuf::from("."),
        source,
    })?;
    let group = group_id(&bundle, &args.id)?;
    let sock = socket_path(args, &group);
    if sock.as_os_str().len() > crust_shim_contract::MAX_SOCKET_PATH {
        return Err(BootstrapError::PathTooLong(sock));
    }
    let dir = sock.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&dir)
        .map_err(|source| BootstrapError::StateDir {
            path: dir.clone(),
            source,
        })?;
    let address = crust_shim_contract::address(&sock);

    let listener = match UnixListener::bind(&sock) {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(&sock).is_ok() {
                None // a live shim serves this group
            } else {
                let _ = std::fs::remove_file(&sock);
                Some(
                    UnixListener::bind(&sock).map_err(|source| BootstrapError::Bind {
                        path: sock.clone(),
                        source,
                    })?,
                )
            }
        }
        Err(source) => {
            return Err(BootstrapError::Bind {
                path: sock.clone(),
                source,
            })
        }
    };
    if let Some(listener) = listener {
        std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|source| BootstrapError::Bind {
                path: sock.clone(),
                source,
            })?;
        if let Err(e) = spawn_daemon(args, &listener, &sock) {
            let _ = std::fs::remove_file(&sock);
            return Err(e);
        }
    }
    std::fs::write(bundle.join("address"), &address).map_err(BootstrapError::Address)?;
    Ok(address)
}

fn spawn_daemon(args: &Args, listener: &UnixListener, sock: &Path) -> Result<(), BootstrapError> {
    let exe = std::env::current_exe().map_err(BootstrapError::Spawn)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sock.with_extension("log"))
        .map_err(BootstrapError::Spawn)?;
    let mut cmd = Command::new(exe);
    cmd.args(args.to_flags()).arg("serve");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    cmd.current_dir("/");
    let fd = listener.as_raw_fd();
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            libc::setsid();
            if fd == 3 {
                let fl = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(BootstrapError::Spawn)?;
    Ok(())
}

/// `delete`: cleans up after a dead shim; returns the DeleteResponse bytes.
pub fn delete(args: &Args) -> Vec<u8> {
    use protobuf::Message;
    let bundle = args
        .bundle
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let rec = bundle.join(crate::task::RUNTIME_FILE);
    let runtime: Option<crate::runtime::Runtime> = std::fs::read(&rec)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let runtime = runtime.unwrap_or_else(|| crate::runtime::Runtime {
        binary: crate::runtime::find_binary(&args.runtime),
        root: crust_shim_contract::runtime_state_root(&args.runtime_root(), &args.namespace),
        systemd_cgroup: false,
    });
    let mut cmd = Command::new(&runtime.binary);
    cmd.arg("--root")
        .arg(&runtime.root)
        .args(["delete", "--force", &args.id]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = cmd.status();
    crate::mount::unmount_rootfs(&bundle.join("rootfs"));
    let _ = std::fs::remove_file(&rec);
    let mut resp = containerd_shim_protos::api::DeleteResponse::new();
    resp.exit_status = 128 + libc::SIGKILL as u32;
    resp.exited_at = Some(crate::task::timestamp(std::time::SystemTime::now())).into();
    resp.write_to_bytes().unwrap_or_default()
}

/// Writes `bytes` to stdout (for the bootstrap replies).
pub fn print(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}
