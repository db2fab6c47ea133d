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

    /// `restore --detach --bundle B --image-path I --work-path W --pid-file P ID` with the
    /// container's new stdio (CRIU hands it to the restored processes); returns the pid.
    pub async fn restore(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        images: &Path,
        io: ProcessIo,
    ) -> Result<i32> {
        if matches!(io, ProcessIo::Console(_)) {
            return Err(ShimError::Unsupported(
                "restore of a container with a terminal",
            ));
        }
        let pid_file = bundle.join("init.pid");
        let log = bundle.join("log.json");
        let mut cmd = self.command(Some(&log));
        cmd.arg("restore")
            .arg("--detach")
            .arg("--bundle")
            .arg(bundle)
            .arg("--image-path")
            .arg(images)
            .arg("--work-path")
            .arg(bundle.join("restore-work"))
            .arg("--pid-file")
            .arg(&pid_file);
        cmd.current_dir(bundle);
        self.run_with_io(reaper, "restore", id, cmd, io, &log, &pid_file)
            .await
    }

    /// `checkpoint --image-path I --work-path W [--leave-running] [flags] ID`.
    pub async fn checkpoint(
        &self,
        reaper: &Reaper,
        id: &str,
        images: &Path,
        work: &Path,
        o: &CheckpointOptions,
    ) -> Result<()> {
        let mut args: Vec<OsString> = vec![
            "--image-path".into(),
            images.into(),
            "--work-path".into(),
            work.into(),
        ];
        for (on, flag) in [
            (!o.exit, "--leave-running"),
            (o.open_tcp, "--tcp-established"),
            (o.external_unix_sockets, "--ext-unix-sk"),
            (o.file_locks, "--file-locks"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        if !o.cgroups_mode.is_empty() {
            args.push("--manage-cgroups-mode".into());
            args.push(o.cgroups_mode.clone().into());
        }
        self.simple(reaper, "checkpoint", id, &args, None)
            .await
            .map(drop)
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

    /// `start ID`: the runtime releases the created init (runc's exec-fifo protocol is the
    /// runtime's own business: the shim never opens its state dir) and returns once the
    /// container's program runs, or the runtime's error.
    pub async fn start(&self, reaper: &Reaper, id: &str) -> Result<()> {
        self.simple(reaper, "start", id, &[], None).await.map(drop)
    }

    pub async fn delete(&self, reaper: &Reaper, id: &str, force: bool) -> Result<()> {
        let args: Vec<OsString> = if force {
            vec!["--force".into()]
        } else {
            vec![]
        };
        match self.simple(reaper, "delete", id, &args, None).await {
            Ok(_) => Ok(()),
            // Already gone from the runtime (removed by a cleanup after a crash): deleted,
            // as containerd's runc shim treats it. Failing here kept the container in the
            // shim's table for good, and the shim never exited.
            Err(ShimError::Runtime { message, .. }) if message.contains("does not exist") => Ok(()),
            Err(e) => Err(e),
        }
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

/// containerd's `containerd.runc.v1.CheckpointOptions` (fields: 1 exit, 2 open_tcp,
/// 3 external_unix_sockets, 4 terminal, 5 file_locks, 6 empty_namespaces, 7 cgroups_mode,
/// 8 image_path, 9 work_path).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckpointOptions {
    pub exit: bool,
    pub open_tcp: bool,
    pub external_unix_sockets: bool,
    pub terminal: bool,
    pub file_locks: bool,
    pub empty_namespaces: Vec<String>,
    pub cgroups_mode: String,
    pub image_path: String,
    pub work_path: String,
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
