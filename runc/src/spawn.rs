//! The runtime side of the fork chain: starts `crust-runc init` from the sealed memfd,
//! moves it into the cgroup, writes user-namespace maps, runs the prestart/createRuntime
//! hooks when asked, forwards the pty master, and waits for `Ready`.
//!
//! Invariant: on any error the processes started here are killed and reaped before the
//! error is returned, so the caller only has to undo its own work (state dir, cgroup).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crust_cgroups::Cgroup;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::config::ns_proc_name;
use crate::init::{Kind, Request, SYNC_FD_ENV};
use crate::sync::Message;

/// Errors of starting the container side.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Memfd(#[from] crate::memfd::MemfdError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error("start init process")]
    Start(#[source] std::io::Error),
    #[error("{0}")]
    Setup(String),
    #[error("open exec fifo {path:?}")]
    Fifo {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("add init process to cgroup")]
    Cgroup(#[source] crust_cgroups::CgroupError),
    #[error("write {path:?}")]
    WriteMap {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Child(String),
    #[error("init exited before it was ready")]
    Died,
    #[error("unexpected message from init: {0}")]
    Protocol(String),
    #[error("{0}")]
    Hook(String),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
}

fn ns_flag(t: LinuxNamespaceType) -> i32 {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// Everything `create` hands to [`spawn`] besides the request.
pub struct Options<'a> {
    /// Called right after the init process started (overlapping its start-up): creates or
    /// names the cgroup the process must join (None: no cgroup).
    pub cgroup: &'a mut dyn FnMut() -> Result<Option<Cgroup>, String>,
    pub console_socket: Option<&'a Path>,
    /// Called for `Message::Hooks` with the init's host pid (prestart + createRuntime).
    pub on_hooks: &'a mut dyn FnMut(i32) -> Result<(), String>,
    /// Become a child subreaper so the exec'd process can be waited for (exec, run).
    pub subreaper: bool,
}

/// Builds the request for a new container from `spec`.
#[allow(clippy::too_many_arguments)]
pub fn create_request(
    spec: &Spec,
    rootfs: &Path,
    fifo: &Path,
    no_pivot: bool,
    preserve_fds: u32,
    new_keyring: Option<String>,
    hook_state: serde_json::Value,
) -> Request {
    let mut join = Vec::new();
    let mut unshare = 0;
    let mut new_userns = false;
    let mut in_userns = false;
    let mut has_mount_ns = false;
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let flag = ns_flag(ns.typ());
        match ns.path() {
            Some(p) => join.push((flag, p.clone())),
            None if flag == libc::CLONE_NEWUSER => new_userns = true,
            None => unshare |= flag,
        }
        in_userns |= ns.typ() == LinuxNamespaceType::User;
        has_mount_ns |= ns.typ() == LinuxNamespaceType::Mount;
    }
    let hooks = spec.hooks().as_ref();
    let sync_hooks = hooks.is_some_and(|h| {
        [h.prestart(), h.create_runtime(), h.create_container()]
            .iter()
            .any(|l| l.as_ref().is_some_and(|v| !v.is_empty()))
    });
    // A new cgroup namespace is rooted at the cgroup the process is in when it unshares,
    // so then the init must be moved first; otherwise it is moved while it sets up.
    let late_cgroup = unshare & libc::CLONE_NEWCGROUP == 0
        && !join.iter().any(|(f, _)| f & libc::CLONE_NEWCGROUP != 0);
    Request {
        kind: Kind::Create,
        process: spec.process().clone().unwrap_or_default(),
        spec: spec.clone(),
        rootfs: rootfs.into(),
        no_pivot,
        fifo: Some(fifo.into()),
        join,
        unshare,
        new_userns,
        in_userns,
        has_mount_ns,
        sync_hooks,
        hook_state,
        preserve_fds,
        new_keyring,
        apparmor: crate::process::apparmor_enabled(),
        selinux: crate::process::selinux_enabled(),
        late_cgroup,
        seccomp: None,
    }
}

/// Builds the request for `exec` into the container whose init is `init_pid`: joins every
/// namespace of the init that differs from ours.
pub fn exec_request(
    spec: &Spec,
    process: oci_spec::runtime::Process,
    init_pid: i32,
    preserve_fds: u32,
) -> Request {
    use std::os::unix::fs::MetadataExt;
    let mut join = Vec::new();
    let mut in_userns = false;
    for t in [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Time,
        LinuxNamespaceType::Mount,
    ] {
        let name = ns_proc_name(t);
        let theirs = PathBuf::from(format!("/proc/{init_pid}/ns/{name}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue;
        };
        if a.ino() != b.ino() || a.dev() != b.dev() {
            in_userns |= t == LinuxNamespaceType::User;
            join.push((ns_flag(t), theirs));
        }
    }
    // A container without its own mount namespace is only chrooted: enter the same root.
    let joins_mnt = join.iter().any(|(f, _)| *f == libc::CLONE_NEWNS);
    let rootfs = if joins_mnt || crate::config::has_namespace(spec, LinuxNamespaceType::Mount) {
        PathBuf::from("/")
    } else {
        PathBuf::from(format!("/proc/{init_pid}/root"))
    };
    Request {
        kind: Kind::Exec,
        spec: spec.clone(),
        process,
        rootfs,
        no_pivot: false,
        fifo: None,
        join,
        unshare: 0,
        new_userns: false,
        in_userns,
        has_mount_ns: false,
        sync_hooks: false,
        hook_state: serde_json::Value::Null,
        preserve_fds,
        new_keyring: None,
        apparmor: crate::process::apparmor_enabled(),
        selinux: crate::process::selinux_enabled(),
        late_cgroup: false,
        seccomp: None,
    }
}

fn write_maps(pid: i32, spec: &Spec) -> Result<(), SpawnError> {
    let linux = spec.linux().as_ref();
    let fmt = |m: &Option<Vec<LinuxIdMapping>>| -> String {
        m.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    for (file, maps) in [
        ("uid_map", linux.map(|l| fmt(l.uid_mappings()))),
        ("gid_map", linux.map(|l| fmt(l.gid_mappings()))),
    ] {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, maps.unwrap_or_default())
            .map_err(|source| SpawnError::WriteMap { path, source })?;
    }
    Ok(())
}

/// A started container process.
pub struct Spawned {
    /// Host pid of the container init / exec'd process.
    pub pid: i32,
    /// The pty master, when the process has a terminal and no console socket was given
    /// (foreground `run`/`exec` proxy it).
    pub console: Option<OwnedFd>,
}

/// Starts the container side for `req` and drives the sync protocol until the process is
/// ready (create: waiting on the exec fifo; exec: execve done).
pub fn spawn(req: Request, opts: Options<'_>) -> Result<Spawned, SpawnError> {
    // With a late cgroup join the init is moved after stage 1 exited: as its subreaper we
    // keep an init that already failed as a zombie, so its pid cannot be reused by another
    // process before the move, and its queued Error is what create reports.
    if opts.subreaper || req.late_cgroup {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let exe = crate::memfd::protected_self()?;
    let (parent, child) = crate::sync::pair()?;
    // SAFETY: clear close-on-exec on our own fd so the init inherits it.
    unsafe { libc::fcntl(child.raw(), libc::F_SETFD, 0) };
    let mut cmd = Command::new(format!("/proc/self/fd/{}", exe.as_raw_fd()));
    cmd.arg("init")
        .env(SYNC_FD_ENV, child.raw().to_string())
        .stdin(Stdio::inherit());
    {
        use std::os::unix::process::CommandExt;
        cmd.arg0("crust-runc");
    }
    let c = cmd.spawn().map_err(SpawnError::Start)?;
    crate::logging::debug("init process started");
    drop(child);
    drop(exe);
    let stage1 = c.id() as i32;
    let mut init = None;
    let mut console = None;
    let result = drive(&parent, stage1, &mut init, &mut console, req, opts);
    if result.is_err() {
        if let Some(p) = init {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(stage1), Signal::SIGKILL);
    }
    // Reap stage 1 (it exits right after reporting the pid, or is the init itself).
    if init != Some(stage1) || result.is_err() {
        let _ = waitpid(Pid::from_raw(stage1), None);
    }
    if result.is_err() {
        if let Some(p) = init.filter(|&p| p != stage1) {
            // With a subreaper the init is our child now; otherwise this fails harmlessly.
            let _ = waitpid(Pid::from_raw(p), None);
        }
    }
    result.map(|_| Spawned {
        pid: init.unwrap_or(stage1),
        console,
    })
}

fn drive(
    ch: &crate::sync::Channel,
    stage1: i32,
    init: &mut Option<i32>,
    console: &mut Option<OwnedFd>,
    req: Request,
    opts: Options<'_>,
) -> Result<(), SpawnError> {
    let late = req.late_cgroup;
    let mut cgroup = None;
    if !late {
        cgroup = (opts.cgroup)().map_err(SpawnError::Setup)?;
        if let Some(cg) = &cgroup {
            cg.add_process(stage1).map_err(SpawnError::Cgroup)?;
            crate::logging::debug("init added to cgroup");
        }
    }
    let kind = req.kind;
    let spec = req.spec.clone();
    let fifo = match &req.fifo {
        Some(p) => Some(
            nix::fcntl::open(
                p.as_path(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|source| SpawnError::Fifo {
                path: p.clone(),
                source,
            })?,
        ),
        None => None,
    };
    ch.send(
        &Message::Request(Box::new(req)),
        fifo.as_ref().map(|f| f.as_raw_fd()),
    )?;
    drop(fifo);
    if late {
        // The cgroup directories are made while the child starts up and joins namespaces.
        cgroup = (opts.cgroup)().map_err(SpawnError::Setup)?;
    }
    loop {
        let (msg, fd) = match ch.recv() {
            Ok(m) => m,
            Err(crate::sync::SyncError::Closed) if kind == Kind::Exec && init.is_some() => {
                return Ok(())
            }
            Err(crate::sync::SyncError::Closed) => return Err(SpawnError::Died),
            Err(e) => return Err(e.into()),
        };
        if init.is_none() && matches!(msg, Message::Hooks | Message::Ready) {
            // Stage 1 reports the init's pid right after forking it, on the channel the
            // init writes to as well: under load the init can get this far first. Taking
            // stage 1 for the init then (it exits at once) made `start` find it "stopped".
            *init = Some(await_pid(ch, stage1)?);
        }
        match msg {
            Message::UsernsReady => {
                write_maps(stage1, &spec)?;
                ch.send(&Message::MapsWritten, None)?;
            }
            Message::Pid(p) => {
                crate::logging::debug("init pid received");
                *init = Some(p);
                if late {
                    if let Some(cg) = &cgroup {
                        if let Err(e) = cg.add_process(p) {
                            // An init that failed before the move has its reason queued.
                            return Err(
                                queued_error(ch).map_or(SpawnError::Cgroup(e), SpawnError::Child)
                            );
                        }
                        crate::logging::debug("init added to cgroup");
                    }
                    // A child that failed meanwhile has closed its end: its Error is
                    // still queued for the next recv, which reports it.
                    let _ = ch.send(&Message::CgroupJoined, None);
                }
            }
            Message::Hooks => {
                let pid = init.ok_or_else(|| SpawnError::Protocol("hooks before pid".into()))?;
                (opts.on_hooks)(pid).map_err(SpawnError::Hook)?;
                ch.send(&Message::HooksDone(pid), None)?;
            }
            Message::Console => {
                let master = fd.ok_or_else(|| SpawnError::Protocol("console without fd".into()))?;
                match opts.console_socket {
                    Some(sock) => {
                        crate::console::send_to_socket(sock, master.as_raw_fd(), "/dev/ptmx")?
                    }
                    None => *console = Some(master),
                }
            }
            Message::Ready => return Ok(()),
            Message::Error(e) => return Err(SpawnError::Child(e)),
            m => return Err(SpawnError::Protocol(format!("{m:?}"))),
        }
    }
}

/// The first `Error` among the messages already queued on the channel, if any.
fn queued_error(ch: &crate::sync::Channel) -> Option<String> {
    loop {
        // SAFETY: the channel's fd stays open for the duration of this borrow.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(ch.raw()) };
        let mut pfd = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO).unwrap_or(0) == 0 {
            return None;
        }
        match ch.recv() {
            Ok((Message::Error(e), _)) => return Some(e),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Waits for stage 1's `Pid` when the init's own messages came first. Stage 1 sends it
/// before it exits, so once stage 1 is seen exited what it sent is already queued: an
/// empty channel then means it died without sending it.
fn await_pid(ch: &crate::sync::Channel, stage1: i32) -> Result<i32, SpawnError> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    loop {
        // WNOWAIT: stage 1 stays a zombie for the reap in `spawn`.
        let exited = !matches!(
            waitid(
                Id::Pid(Pid::from_raw(stage1)),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            ),
            Ok(WaitStatus::StillAlive)
        );
        // SAFETY: the channel's fd stays open for the duration of this borrow.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(ch.raw()) };
        let mut pfd = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        let wait = nix::poll::PollTimeout::from(if exited { 0u16 } else { 20 });
        if nix::poll::poll(&mut pfd, wait).unwrap_or(0) > 0 {
            return match ch.recv()?.0 {
                Message::Pid(p) => Ok(p),
                Message::Error(e) => Err(SpawnError::Child(e)),
                m => Err(SpawnError::Protocol(format!("{m:?} before the init's pid"))),
            };
        }
        if exited {
            return Err(SpawnError::Protocol(
                "stage 1 exited without reporting the init's pid".into(),
            ));
        }
    }
}

/// Writes `process.oomScoreAdj` for `pid`. Without CAP_SYS_RESOURCE a value below the
/// current one is refused; then the lowest allowed value (the inherited one) stays, and a
/// warning is logged once.
pub fn set_oom_score_adj(pid: i32, value: i32) {
    let path = format!("/proc/{pid}/oom_score_adj");
    if std::fs::write(&path, value.to_string()).is_err() {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        crate::logging::warn(&format!(
            "oom_score_adj {value} not permitted on this host (no CAP_SYS_RESOURCE); keeping {}",
            current.trim()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Drives a fake init whose `Ready` comes before stage 1's `Pid` (as under load), with
    /// `stage1` standing in for stage 1; returns what `drive` made of it.
    fn drive_with_late_pid(
        stage1: &mut std::process::Child,
        pid: Option<i32>,
    ) -> (Result<(), SpawnError>, Option<i32>) {
        let (parent, child) = crate::sync::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let (m, _) = child.recv().unwrap();
            assert!(matches!(m, Message::Request(_)));
            child.send(&Message::Ready, None).unwrap();
            std::thread::sleep(Duration::from_millis(150));
            if let Some(p) = pid {
                child.send(&Message::Pid(p), None).unwrap();
            }
            // The init keeps its end open (it waits on the exec fifo).
            std::thread::sleep(Duration::from_millis(600));
        });
        let req = create_request(
            &Spec::default(),
            Path::new("/"),
            Path::new("/dev/null"),
            false,
            0,
            None,
            serde_json::Value::Null,
        );
        let (mut init, mut console) = (None, None);
        let r = drive(
            &parent,
            stage1.id() as i32,
            &mut init,
            &mut console,
            req,
            Options {
                cgroup: &mut || Ok(None),
                console_socket: None,
                on_hooks: &mut |_| Ok(()),
                subreaper: false,
            },
        );
        peer.join().unwrap();
        let _ = stage1.kill();
        let _ = stage1.wait();
        (r, init)
    }

    #[test]
    fn init_pid_arriving_after_ready_is_waited_for() {
        let mut stage1 = Command::new("sleep").arg("5").spawn().unwrap();
        let (r, init) = drive_with_late_pid(&mut stage1, Some(4242));
        assert!(r.is_ok(), "{:?}", r.err());
        assert_eq!(init, Some(4242), "took stage 1 for the init");
    }

    #[test]
    fn stage1_dying_without_the_pid_is_an_error_not_a_hang() {
        let mut stage1 = Command::new("true").spawn().unwrap();
        let (r, init) = drive_with_late_pid(&mut stage1, None);
        assert!(matches!(r, Err(SpawnError::Protocol(_))), "{:?}", r.err());
        assert_eq!(init, None);
    }
}
