//! The OCI runtime's command line (runc-compatible: crust-runc, runc, crun).
//!
//! Each verb runs the runtime binary as a child through the [`Reaper`] and awaits its
//! exit. `create` and `exec` hand the container's stdio to the runtime, so their error
//! text comes from `--log <file> --log-format json`; the other verbs capture stderr.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::io::AsyncReadExt;

use crate::error::{Result, ShimError};
use crate::reaper::Reaper;

/// Default runtime binary name, looked up next to the shim binary, then in PATH.
pub const DEFAULT_BINARY: &str = "crust-runc";

/// How to run the OCI runtime for one container.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Runtime {
    pub binary: PathBuf,
    pub root: PathBuf,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

/// The stdio handed to a container process: either three fds or a console socket.
pub enum ProcessIo {
    Fds {
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    },
    Console(PathBuf),
}

/// Finds `name`: an absolute path as is, else next to the current executable, else PATH.
pub fn find_binary(name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() || name.contains('/') {
        return p.to_path_buf();
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let cand = dir.join(name);
        if cand.is_file() {
            return cand;
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let cand = dir.join(name);
            if cand.is_file() {
                return cand;
            }
        }
    }
    p.to_path_buf()
}

impl Runtime {
    fn command(&self, log: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        if let Some(log) = log {
            cmd.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd
    }

    /// `create --bundle B --pid-file P [--console-socket S] ID`; returns the init pid.
    pub async fn create(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        io: ProcessIo,
    ) -> Result<i32> {
        let pid_file = bundle.join("init.pid");
        let log = bundle.join("log.json");
        let mut cmd = self.command(Some(&log));
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        cmd.current_dir(bundle);
        self.run_with_io(reaper, "create", id, cmd, io, &log, &pid_file)
            .await
    }

    /// `exec --detach --process F --pid-file P [--console-socket S] ID`; returns the pid.
    pub async fn exec(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        exec_id: &str,
        process_json: &[u8],
        io: ProcessIo,
    ) -> Result<i32> {
        let spec = bundle.join(format!("exec-{exec_id}.json"));
        std::fs::write(&spec, process_json).map_err(|e| ShimError::io("write", &spec, e))?;
        let pid_file = bundle.join(format!("exec-{exec_id}.pid"));
        let log = bundle.join(format!("exec-{exec_id}.log.json"));
        let mut cmd = self.command(Some(&log));
        cmd.arg("exec").arg("--detach").arg("--process").arg(&spec);
        cmd.arg("--pid-file").arg(&pid_file);
        cmd.current_dir(bundle);
        let r = self
            .run_with_io(reaper, "exec", id, cmd, io, &log, &pid_file)
            .await;
        let _ = std::fs::remove_file(&spec);
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&pid_file);
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_with_io(
        &self,
        reaper: &Reaper,
        verb: &'static str,
        id: &str,
        mut cmd: Command,
        io: ProcessIo,
        log: &Path,
        pid_file: &Path,
    ) -> Result<i32> {
        match io {
            ProcessIo::Console(sock) => {
                cmd.arg("--console-socket").arg(sock);
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
            ProcessIo::Fds {
                stdin,
                stdout,
                stderr,
            } => {
                cmd.stdin(stdin.map_or_else(Stdio::null, Stdio::from));
                cmd.stdout(stdout.map_or_else(Stdio::null, Stdio::from));
                cmd.stderr(stderr.map_or_else(Stdio::null, Stdio::from));
            }
        }
        cmd.arg(id);
        let _ = std::fs::remove_file(log);
        let (child, exit) = reaper.spawn(&mut cmd).map_err(|e| ShimError::Runtime {
            command: verb,
            id: id.to_string(),
            message: format!("spawning {}: {e}", self.binary.display()),
        })?;
        // Close our copies of the container's stdio before waiting.
        drop(cmd);
        drop(child);
        let status = exit.await.map(|e| e.status).unwrap_or(255);
        if status != 0 {
            return Err(ShimError::Runtime {
                command: verb,
                id: id.to_string(),
                message: last_log_error(log).unwrap_or_else(|| format!("exit status {status}")),
            });
        }
        let pid = std::fs::read_to_string(pid_file)
            .map_err(|e| ShimError::io("read pid file", pid_file, e))?;
        pid.trim().parse::<i32>().map_err(|_| ShimError::Runtime {
            command: verb,
            id: id.to_string(),
            message: format!("bad pid file {}", pid_file.display()),
        })
    }

    /// Runs a verb that does not touch container stdio; returns its stdout.
    async fn simple(
        &self,
        reaper: &Reaper,
        verb: &'static str,
        id: &str,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let err = |message: String| ShimError::Runtime {
            command: verb,
            id: id.into(),
            message,
        };
        let mut cmd = self.command(None);
        cmd.arg(verb).args(args).arg(id);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let (mut child, exit) = reaper
            .spawn(&mut cmd)
            .map_err(|e| err(format!("spawning {}: {e}", self.binary.display())))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // Small payloads (resources JSON) fit in the pipe buffer.
            use std::io::Write;
            let _ = pipe.write_all(data);
        }
        let out = child.stdout.take().map(OwnedFd::from);
        let errp = child.stderr.take().map(OwnedFd::from);
        let (out, errs) = tokio::join!(read_pipe(out), read_pipe(errp));
        let status = exit.await.map(|e| e.status).unwrap_or(255);
        if status != 0 {
            let msg = String::from_utf8_lossy(&errs);
            return Err(err(json_msg(msg.trim()).unwrap_or_else(|| {
                if msg.trim().is_empty() {
                    format!("exit status {status}")
                } else {
                    msg.trim().to_string()
                }
            })));
        }
        Ok(out)
    }

    /// `start ID`. With crust-runc and no poststart hooks the shim releases the init itself
    /// (see [`release_exec_fifo`]); otherwise, and whenever that finds anything unexpected,
    /// the runtime runs, so its checks and error messages stay the authority.
    pub async fn start(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        init_pid: i32,
    ) -> Result<()> {
        if self.binary.file_name() == Some(std::ffi::OsStr::new(DEFAULT_BINARY))
            && !has_start_hooks(bundle)
            && release_exec_fifo(&self.root.join(id), init_pid).await
        {
            return Ok(());
        }
        self.simple(reaper, "start", id, &[], None).await.map(drop)
    }

    pub async fn delete(&self, reaper: &Reaper, id: &str, force: bool) -> Result<()> {
        let args: Vec<OsString> = if force {
            vec!["--force".into()]
        } else {
            vec![]
        };
        self.simple(reaper, "delete", id, &args, None)
            .await
            .map(drop)
    }

    /// `kill [--all] ID SIGNAL` (the signal follows the id on runc's command line).
    pub async fn kill(&self, reaper: &Reaper, id: &str, signal: u32, all: bool) -> Result<()> {
        let mut args: Vec<OsString> = Vec::new();
        if all {
            args.push("--all".into());
        }
        args.push(id.into());
        args.push(signal.to_string().into());
        let err = |message: String| ShimError::Runtime {
            command: "kill",
            id: id.into(),
            message,
        };
        let mut cmd = self.command(None);
        cmd.arg("kill").args(&args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (mut child, exit) = reaper
            .spawn(&mut cmd)
            .map_err(|e| err(format!("spawning {}: {e}", self.binary.display())))?;
        let errs = read_pipe(child.stderr.take().map(OwnedFd::from)).await;
        let status = exit.await.map(|e| e.status).unwrap_or(255);
        if status != 0 {
            let msg = String::from_utf8_lossy(&errs).trim().to_string();
            return Err(err(json_msg(&msg).unwrap_or(msg)));
        }
        Ok(())
    }

    pub async fn pause(&self, reaper: &Reaper, id: &str) -> Result<()> {
        self.simple(reaper, "pause", id, &[], None).await.map(drop)
    }

    pub async fn resume(&self, reaper: &Reaper, id: &str) -> Result<()> {
        self.simple(reaper, "resume", id, &[], None).await.map(drop)
    }

    /// `update --resources - ID` with the runtime-spec LinuxResources JSON on stdin.
    pub async fn update(&self, reaper: &Reaper, id: &str, resources: &[u8]) -> Result<()> {
        let args: Vec<OsString> = vec!["--resources".into(), "-".into()];
        self.simple(reaper, "update", id, &args, Some(resources))
            .await
            .map(drop)
    }

    /// `ps --format json ID`: the pids in the container.
    pub async fn ps(&self, reaper: &Reaper, id: &str) -> Result<Vec<u32>> {
        let args: Vec<OsString> = vec!["--format".into(), "json".into()];
        let out = self.simple(reaper, "ps", id, &args, None).await?;
        let pids: Option<Vec<u32>> = serde_json::from_slice(&out).ok();
        Ok(pids.unwrap_or_default())
    }
}

async fn read_pipe(fd: Option<OwnedFd>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(Ok(mut rx)) = fd.map(tokio::net::unix::pipe::Receiver::from_owned_fd) {
        let _ = rx.read_to_end(&mut buf).await;
    }
    buf
}

/// The `msg` of the last error line of a runc `--log-format json` log.
fn last_log_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        if v.get("level")?.as_str()? == "error" {
            v.get("msg")?.as_str().map(str::to_string)
        } else {
            None
        }
    })
}

/// runc prints errors as JSON log lines on stderr in some modes; take their `msg`.
fn json_msg(s: &str) -> Option<String> {
    let line = s.lines().last()?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("msg")?.as_str().map(str::to_string)
}

/// Whether the bundle's config.json asks for startContainer or poststart hooks (which the
/// init and `crust-runc start` run around the release, and which may take long). An
/// unreadable config counts as having them, so the runtime decides.
fn has_start_hooks(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return true;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return true;
    };
    ["/hooks/poststart", "/hooks/startContainer"]
        .iter()
        .any(|p| {
            v.pointer(p)
                .and_then(|h| h.as_array())
                .is_some_and(|a| !a.is_empty())
        })
}

/// What `crust-runc start` does for a created container without start hooks, done in the
/// shim: open the exec fifo in the container's state dir (`<root>/<id>/exec.fifo`, the same
/// protocol as runc's), read the byte the blocked init writes once a reader appears, then
/// read until EOF (the init holds its write end, close-on-exec, until its execve: the
/// program runs when this returns, as after `crust-runc start`), and remove the fifo
/// (crust-runc reports "created" while it exists). Saves a process start on every
/// StartContainer (about 1 ms here).
///
/// Returns false, having changed nothing the runtime cares about, when this is not the
/// plain case: no fifo (not created, or already started), no writer while the init
/// (`init_pid`) is gone, or no byte within 10 s (runc's limit). The caller then runs
/// `crust-runc start`, which reports the state properly. While the init lives, a missing
/// writer (it opens its end just after create returns) is waited for: giving up then could
/// close our end between its open and its write. Once the byte is read the init is
/// released: only EOF (execve or death) ends the wait, and the answer is true.
async fn release_exec_fifo(state_dir: &Path, init_pid: i32) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let fifo = state_dir.join("exec.fifo");
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
    else {
        return false;
    };
    if !f.metadata().is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_fifo()
    }) {
        return false;
    }
    // SAFETY: `f` is an open fd owned by the AsyncFd for the registration's whole life.
    let Ok(afd) = (unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(f, tokio::io::Interest::READABLE)
    }) else {
        return false;
    };
    let init_alive = || {
        std::fs::read(format!("/proc/{init_pid}/stat")).is_ok_and(|st| {
            // The state field follows the last ')' (comm may hold anything).
            let state = st
                .iter()
                .rposition(|&b| b == b')')
                .and_then(|i| st.get(i + 2).copied());
            init_pid > 0 && !matches!(state, Some(b'Z' | b'X') | None)
        })
    };
    let released = std::sync::atomic::AtomicBool::new(false);
    let read = async {
        loop {
            let mut buf = [0u8; 16];
            let wait = match std::io::Read::read(&mut afd.get_ref(), &mut buf) {
                Ok(0) if released.load(std::sync::atomic::Ordering::Relaxed) => return true,
                // No writer yet: wait while the init lives.
                Ok(0) if init_alive() => std::time::Duration::from_millis(20),
                Ok(0) => return false,
                Ok(_) => {
                    released.store(true, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::time::Duration::from_secs(10)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return released.load(std::sync::atomic::Ordering::Relaxed),
            };
            match tokio::time::timeout(wait, afd.readable()).await {
                Ok(Ok(mut guard)) => guard.clear_ready(),
                Ok(Err(_)) => return released.load(std::sync::atomic::Ordering::Relaxed),
                Err(_) => {}
            }
        }
    };
    tokio::pin!(read);
    let done = match tokio::time::timeout(std::time::Duration::from_secs(10), &mut read).await {
        Ok(r) => r,
        // Released but not yet exec'd (slow under load): the release cannot be undone.
        Err(_) if released.load(std::sync::atomic::Ordering::Relaxed) => read.await,
        Err(_) => false,
    };
    if done {
        // Released either way: a fifo left behind only makes `crust-runc state` say
        // "created"; reporting failure would start the runtime on a running init.
        if let Err(e) = std::fs::remove_file(&fifo) {
            eprintln!("crust-shim: remove {}: {e}", fifo.display());
        }
    }
    done
}

#[cfg(test)]
mod start_tests {
    use super::*;

    fn fifo_in(dir: &Path) -> PathBuf {
        let p = dir.join("exec.fifo");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
        p
    }

    #[tokio::test]
    async fn released_when_the_init_writes_its_byte() {
        let d = tempfile::tempdir().unwrap();
        let p = fifo_in(d.path());
        // The init: blocks opening the write side until a reader comes, writes one byte.
        let w = p.clone();
        let init = std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(w).unwrap();
            f.write_all(b"0").unwrap();
        });
        assert!(release_exec_fifo(d.path(), std::process::id() as i32).await);
        init.join().unwrap();
        assert!(!p.exists(), "fifo left behind");
    }

    #[tokio::test]
    async fn returns_only_when_the_init_closes_its_end_at_execve() {
        let d = tempfile::tempdir().unwrap();
        let p = fifo_in(d.path());
        let w = p.clone();
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = closed.clone();
        // The init: writes its byte, then holds the write end (its remaining setup and
        // execve) for a while before the close-on-exec closes it.
        let init = std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(w).unwrap();
            f.write_all(b"0").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            c.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(f);
        });
        assert!(release_exec_fifo(d.path(), std::process::id() as i32).await);
        assert!(
            closed.load(std::sync::atomic::Ordering::SeqCst),
            "returned before the init's execve"
        );
        init.join().unwrap();
        assert!(!p.exists());
    }

    #[tokio::test]
    async fn a_live_init_that_opens_its_end_late_is_waited_for() {
        let d = tempfile::tempdir().unwrap();
        let p = fifo_in(d.path());
        let w = p.clone();
        let init = std::thread::spawn(move || {
            use std::io::Write;
            std::thread::sleep(std::time::Duration::from_millis(300));
            let mut f = std::fs::OpenOptions::new().write(true).open(w).unwrap();
            f.write_all(b"0").unwrap();
        });
        // Our own pid stands for the live init.
        assert!(release_exec_fifo(d.path(), std::process::id() as i32).await);
        init.join().unwrap();
        assert!(!p.exists());
    }

    #[tokio::test]
    async fn not_released_without_fifo_or_without_writer() {
        let d = tempfile::tempdir().unwrap();
        // An init pid that is not alive (pid_max is below i32::MAX).
        let gone = i32::MAX;
        assert!(!release_exec_fifo(d.path(), gone).await, "no fifo");
        std::fs::write(d.path().join("exec.fifo"), b"x").unwrap();
        assert!(!release_exec_fifo(d.path(), gone).await, "a regular file");
        std::fs::remove_file(d.path().join("exec.fifo")).unwrap();
        let p = fifo_in(d.path());
        // No writer and the init is gone: EOF, left to the runtime.
        assert!(!release_exec_fifo(d.path(), gone).await);
        assert!(p.exists(), "the runtime must still find the fifo");
    }

    #[test]
    fn start_hooks_are_left_to_the_runtime() {
        let d = tempfile::tempdir().unwrap();
        assert!(has_start_hooks(d.path()), "no config: runtime decides");
        let cfg = d.path().join("config.json");
        std::fs::write(&cfg, br#"{"hooks": {"prestart": [{"path": "/bin/true"}]}}"#).unwrap();
        assert!(!has_start_hooks(d.path()));
        std::fs::write(&cfg, br#"{"hooks": {"poststart": []}}"#).unwrap();
        assert!(!has_start_hooks(d.path()));
        std::fs::write(
            &cfg,
            br#"{"hooks": {"poststart": [{"path": "/bin/true"}]}}"#,
        )
        .unwrap();
        assert!(has_start_hooks(d.path()));
        std::fs::write(
            &cfg,
            br#"{"hooks": {"startContainer": [{"path": "/bin/true"}]}}"#,
        )
        .unwrap();
        assert!(has_start_hooks(d.path()));
        std::fs::write(&cfg, b"{not json").unwrap();
        assert!(has_start_hooks(d.path()));
    }
}
