//! The container side of the fork chain, run by `crust-runc init` re-executed from the
//! sealed memfd (see `memfd`):
//!
//! ```text
//! runtime (parent) ──spawn──▶ stage 1: setns(paths), unshare(user) + maps, unshare(rest)
//!                                  └─fork─▶ stage 2 (pid 1 of a new pid ns): rootfs, hooks,
//!                                           console, pivot, sysctl, user, capabilities,
//!                                           seccomp, ready, exec fifo, execve
//! ```
//!
//! Stage 1 only forks when a pid or time namespace is created or joined (those apply to
//! children only). Everything that can fail for a reason in the config happens before
//! `Ready` and is reported to the parent as `Message::Error`, so `create`/`exec` fail with
//! the reason and clean up (as runc). After `Ready` the init only opens the exec fifo, writes
//! its byte, runs the startContainer hooks and execs; it holds the fifo's write end until
//! that execve (close-on-exec), so `start`, which reads the fifo until EOF, returns when the
//! program runs.
//!
//! Invariants: no threads exist in this process (setns(user) and fork need that); the
//! process is non-dumpable from its first instruction until execve (as runc's init), so
//! processes of the container it joins or creates cannot ptrace it or open its
//! /proc/<pid>/fd (which hold host fds such as the exec fifo's) while it works for the
//! runtime.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

use crate::sync::{Channel, Message};

/// Environment variable carrying the sync fd number to `crust-runc init`.
pub const SYNC_FD_ENV: &str = "_CRUST_RUNC_SYNC_FD";

/// What the init is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Set up a new container and wait on the exec fifo.
    Create,
    /// Enter an existing container and execve.
    Exec,
}

/// The job sent by the parent (message 1 of the sync protocol).
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub kind: Kind,
    pub spec: Spec,
    pub process: Process,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    /// Exec fifo (host path), create only.
    pub fifo: Option<PathBuf>,
    /// Namespaces to join, in order: (clone flag bits, path).
    pub join: Vec<(i32, PathBuf)>,
    /// Clone flags to unshare (without CLONE_NEWUSER, see `new_userns`).
    pub unshare: i32,
    pub new_userns: bool,
    /// The process ends up in a user namespace other than the host's.
    pub in_userns: bool,
    pub has_mount_ns: bool,
    /// Stop for the parent's prestart/createRuntime hooks and learn the host pid.
    pub sync_hooks: bool,
    /// State JSON template for createContainer/startContainer hooks (pid added later).
    pub hook_state: serde_json::Value,
    pub preserve_fds: u32,
    /// Join a fresh session keyring named after the container (runc's default).
    pub new_keyring: Option<String>,
    pub apparmor: bool,
    pub selinux: bool,
    /// The parent moves the init into the cgroup after `Pid` and says `CgroupJoined` (see
    /// crate::sync); otherwise the process was moved before the request was sent.
    #[serde(default)]
    pub late_cgroup: bool,
    /// `linux.seccomp`, compiled by the runtime.
    #[serde(default)]
    pub seccomp: Option<crate::seccomp::Program>,
}

/// Errors of the init side.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error("unexpected sync message {0}")]
    Protocol(String),
    #[error("open namespace {path:?}")]
    OpenNs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("setns {path:?}")]
    Setns {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("unshare namespaces {flags:#x}")]
    Unshare {
        flags: i32,
        #[source]
        source: nix::Error,
    },
    #[error("fork")]
    Fork(#[source] nix::Error),
    #[error("write timens offsets")]
    TimeOffsets(#[source] std::io::Error),
    #[error("setsid")]
    Setsid(#[source] nix::Error),
    #[error("rootfs")]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error("sethostname {name:?}")]
    Hostname {
        name: String,
        #[source]
        source: nix::Error,
    },
    #[error("setdomainname {name:?}")]
    Domainname {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("write sysctl {key}")]
    Sysctl {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("open exec fifo {path:?}")]
    Fifo {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Renders an error with its sources, "a: b: c".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.ends_with(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// Set once `Ready` went out: the parent reads no further message after it.
static READY_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Entry point of `crust-runc init`. Never returns.
pub fn main() -> ! {
    let fd: RawFd = match std::env::var(SYNC_FD_ENV).ok().and_then(|v| v.parse().ok()) {
        Some(fd) => fd,
        None => {
            eprintln!("crust-runc init: must be started by crust-runc ({SYNC_FD_ENV} unset)");
            std::process::exit(1)
        }
    };
    std::env::remove_var(SYNC_FD_ENV);
    set_dumpable(false);
    // Executed as /proc/self/fd/N, the kernel named us "N": say what we are in `ps` until
    // the container's program replaces us.
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"crust-runc:init".as_ptr()) };
    // SAFETY: the parent passed us this socket and nothing else in this process owns it.
    let ch = unsafe { Channel::from_raw(fd) };
    // SAFETY: fcntl on our own fd; the channel must not leak into the container program.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    if let Err(e) = stage1(&ch) {
        // After `Ready` nobody reads the channel any more (create may still be running, so
        // the send succeeds and is lost): say it on the container's stderr then.
        let sent = ch.send(&Message::Error(chain(&e)), None).is_ok();
        if !sent || READY_SENT.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("crust-runc init: {}", chain(&e));
        }
        std::process::exit(1);
    }
    std::process::exit(0)
}

fn stage1(ch: &Channel) -> Result<(), InitError> {
    // The exec fifo comes as an fd: the state dir (0700) may not be reachable from inside a
    // user namespace.
    let (msg, fifo) = ch.recv()?;
    let req = match msg {
        Message::Request(r) => r,
        m => return Err(InitError::Protocol(format!("{m:?}"))),
    };
    // Bind sources are cloned (idmapped when asked) with the host's privileges and path
    // access: before any setns.
    let idmapped = match req.kind {
        Kind::Create if req.has_mount_ns => {
            crate::rootfs::prepare_idmapped(&req.spec, req.in_userns)?
        }
        Kind::Create => crate::rootfs::prepare_idmapped(&req.spec, false)?,
        Kind::Exec => Default::default(),
    };
    // Open every namespace first: joining the mount ns changes how paths resolve.
    let mut fds: Vec<(OwnedFd, i32, &Path)> = Vec::new();
    for (flag, path) in &req.join {
        let fd = nix::fcntl::open(
            path.as_path(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| InitError::OpenNs {
            path: path.clone(),
            source,
        })?;
        fds.push((fd, *flag, path));
    }
    // The user namespace first (it owns the others), the mount namespace last.
    fds.sort_by_key(|(_, flag, _)| match *flag {
        f if f == libc::CLONE_NEWUSER => 0,
        f if f == libc::CLONE_NEWNS => 2,
        _ => 1,
    });
    for (fd, flag, path) in &fds {
        nix::sched::setns(fd, CloneFlags::from_bits_truncate(*flag)).map_err(|source| {
            InitError::Setns {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    drop(fds);
    if req.new_userns {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|source| InitError::Unshare {
            flags: libc::CLONE_NEWUSER,
            source,
        })?;
        ch.send(&Message::UsernsReady, None)?;
        match ch.recv()?.0 {
            Message::MapsWritten => {}
            m => return Err(InitError::Protocol(format!("{m:?}"))),
        }
    }
    if req.in_userns {
        // Become root of the user namespace when root is mapped (runc does the same).
        let root = nix::unistd::Uid::from_raw(0);
        let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
        let _ = nix::unistd::setresuid(root, root, root);
    }
    if req.unshare != 0 {
        // Raw unshare: nix's CloneFlags has no CLONE_NEWTIME and would drop the bit.
        // SAFETY: unshare with flags only; this process is single-threaded.
        if unsafe { libc::unshare(req.unshare) } != 0 {
            return Err(InitError::Unshare {
                flags: req.unshare,
                source: nix::Error::last(),
            });
        }
    }
    if req.unshare & libc::CLONE_NEWTIME != 0 {
        write_time_offsets(&req.spec, req.in_userns)?;
    }
    let child_only = libc::CLONE_NEWPID | libc::CLONE_NEWTIME;
    let needs_fork =
        req.unshare & child_only != 0 || req.join.iter().any(|(f, _)| f & child_only != 0);
    if needs_fork {
        // SAFETY: this process is single-threaded, so the child may run arbitrary code.
        match unsafe { nix::unistd::fork() }.map_err(InitError::Fork)? {
            nix::unistd::ForkResult::Parent { child } => {
                ch.send(&Message::Pid(child.as_raw()), None)?;
                std::process::exit(0);
            }
            nix::unistd::ForkResult::Child => {}
        }
    } else {
        ch.send(&Message::Pid(std::process::id() as i32), None)?;
    }
    match req.kind {
        Kind::Create => stage2_create(ch, &req, fifo, &idmapped),
        Kind::Exec => stage2_exec(ch, &req),
    }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING): a private session keyring so containers don't share
/// the host's. Failure is ignored (keyrings may be disabled or denied by seccomp), as runc.
fn join_session_keyring(name: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: keyctl with a valid C string argument.
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
    }
}

/// prctl(PR_SET_DUMPABLE). execve makes the program dumpable again.
fn set_dumpable(on: bool) {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
}

fn write_time_offsets(spec: &Spec, in_userns: bool) -> Result<(), InitError> {
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().clone());
    let mut text = String::new();
    for (clock, off) in offsets.iter().flatten() {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        use std::io::Write;
        // Our /proc files belong to the host's root while we are non-dumpable, which the
        // root of a new user namespace is not; nothing else lives in the new time
        // namespace yet.
        if in_userns {
            set_dumpable(true);
        }
        let r = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/timens_offsets")
            .and_then(|mut f| f.write_all(text.as_bytes()));
        set_dumpable(false);
        r.map_err(InitError::TimeOffsets)?;
    }
    Ok(())
}

fn set_labels(req: &Request, process: &Process) -> Result<(), InitError> {
    if req.apparmor {
        if let Some(p) = process
            .apparmor_profile()
            .as_ref()
            .filter(|p| !p.is_empty())
        {
            let file = if Path::new("/proc/self/attr/apparmor/exec").exists() {
                "/proc/self/attr/apparmor/exec"
            } else {
                "/proc/self/attr/exec"
            };
            crate::process::set_lsm_exec_label(file, &format!("exec {p}"))?;
        }
    }
    if req.selinux {
        if let Some(l) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
            crate::process::set_lsm_exec_label("/proc/self/attr/exec", l)?;
        }
    }
    Ok(())
}

fn stage2_create(
    ch: &Channel,
    req: &Request,
    fifo: Option<OwnedFd>,
    idmapped: &std::collections::HashMap<usize, OwnedFd>,
) -> Result<(), InitError> {
    nix::unistd::setsid().map_err(InitError::Setsid)?;
    if let Some(name) = &req.new_keyring {
        join_session_keyring(name);
    }
    let spec = &req.spec;
    let opts = crate::rootfs::RootfsOptions {
        no_pivot: req.no_pivot,
        in_user_ns: req.in_userns,
        runtime_mount_ns: !req.has_mount_ns,
        idmapped: idmapped
            .iter()
            .map(|(i, fd)| (*i, fd.as_raw_fd()))
            .collect(),
    };
    // With a late cgroup join the parent moves us while the rootfs is set up (the move can
    // wait for an RCU grace period): wait for it where our membership is first read.
    let mut joined = !req.late_cgroup;
    let mut wait_cgroup = || -> Result<(), crate::rootfs::RootfsError> {
        if joined {
            return Ok(());
        }
        joined = true;
        match ch.recv() {
            Ok((Message::CgroupJoined, _)) => Ok(()),
            Ok((m, _)) => Err(crate::rootfs::RootfsError::JoinCgroup(format!(
                "unexpected sync message {m:?}"
            ))),
            Err(e) => Err(crate::rootfs::RootfsError::JoinCgroup(e.to_string())),
        }
    };
    crate::rootfs::prepare(spec, &req.rootfs, &opts, &mut wait_cgroup)?;
    wait_cgroup()?;
    let mut hook_state = req.hook_state.clone();
    if req.sync_hooks {
        ch.send(&Message::Hooks, None)?;
        match ch.recv()?.0 {
            Message::HooksDone(pid) => hook_state["pid"] = pid.into(),
            m => return Err(InitError::Protocol(format!("{m:?}"))),
        }
        let hooks = spec.hooks().as_ref();
        crate::hooks::run(
            "createContainer",
            hooks.and_then(|h| h.create_container().as_ref()),
            &hook_state.to_string(),
        )?;
    }
    let terminal = req.process.terminal().unwrap_or(false);
    let mut pts = None;
    if terminal {
        let pty = crate::console::open_pty(&req.rootfs.join("dev/ptmx"))?;
        let slave = req.rootfs.join(format!("dev/pts/{}", pty.number));
        crate::rootfs::mount_console(&req.rootfs, &slave)?;
        ch.send(&Message::Console, Some(pty.master.as_raw_fd()))?;
        pts = Some(PathBuf::from(format!("/dev/pts/{}", pty.number)));
    }
    crate::rootfs::pivot(&req.rootfs, &opts)?;
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|source| InitError::Hostname {
            name: h.clone(),
            source,
        })?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|h| !h.is_empty()) {
        std::fs::write("/proc/sys/kernel/domainname", d).map_err(|source| {
            InitError::Domainname {
                name: d.clone(),
                source,
            }
        })?;
    }
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(path, value).map_err(|source| InitError::Sysctl {
            key: key.clone(),
            source,
        })?;
    }
    crate::rootfs::finalize(spec)?;
    if let Some(p) = &pts {
        crate::console::become_console(p)?;
    }
    crate::process::set_rlimits(&req.process)?;
    set_labels(req, &req.process)?;
    let env = crate::process::environment(&req.process);
    // Made now: once the seccomp filter is on, nothing is allocated or encoded.
    let ready = Channel::encode(&Message::Ready)?;
    let fifo_path = fifo
        .as_ref()
        .map(|f| std::ffi::CString::new(format!("/proc/self/fd/{}", f.as_raw_fd())))
        .transpose()
        .map_err(|_| InitError::Protocol("fifo path".into()))?;
    hook_state["status"] = "created".into();
    let hook_state = hook_state.to_string();
    let start_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref());
    let keep: Vec<RawFd> = [Some(ch.raw()), fifo.as_ref().map(|f| f.as_raw_fd())]
        .into_iter()
        .flatten()
        .collect();
    let exec = crate::process::finalize(
        &req.process,
        req.seccomp.as_ref(),
        &env,
        req.preserve_fds,
        &keep,
    )?;
    ch.send_encoded(&ready)?;
    READY_SENT.store(true, std::sync::atomic::Ordering::Relaxed);
    // Held open until execve closes it: `start` reads until EOF.
    let _release = match &fifo_path {
        Some(path) => Some(release(path)?),
        None => None,
    };
    // As runc: the O_PATH fd of the host's fifo goes before the program could see it.
    drop(fifo);
    crate::hooks::run("startContainer", start_hooks, &hook_state)?;
    Err(exec.exec().into())
}

/// Opens the exec fifo's write end (blocks until `start` opens the read end) and writes the
/// byte that tells `start` we are released. Opens through /proc/self/fd of our O_PATH fd.
fn release(path: &std::ffi::CStr) -> Result<OwnedFd, InitError> {
    let err = |source| InitError::Fifo {
        path: PathBuf::from(path.to_string_lossy().into_owned()),
        source,
    };
    let w = loop {
        // SAFETY: open with a valid C string; the result is checked below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: a fresh fd we own.
            break unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        }
        match nix::Error::last() {
            // A signal may interrupt the wait.
            nix::Error::EINTR => continue,
            e => return Err(err(e)),
        }
    };
    // A start that went away before reading must not release us (runc fails too).
    nix::unistd::write(&w, b"0").map_err(err)?;
    Ok(w)
}

fn stage2_exec(ch: &Channel, req: &Request) -> Result<(), InitError> {
    if req.rootfs != Path::new("/") {
        // The container shares our mount namespace and lives in a chroot (see exec_request).
        crate::rootfs::chroot(&req.rootfs)?;
    }
    let terminal = req.process.terminal().unwrap_or(false);
    if terminal {
        nix::unistd::setsid().map_err(InitError::Setsid)?;
        let pty = crate::console::open_pty(Path::new("/dev/ptmx"))?;
        ch.send(&Message::Console, Some(pty.master.as_raw_fd()))?;
        crate::console::become_console(Path::new(&format!("/dev/pts/{}", pty.number)))?;
    }
    crate::process::set_rlimits(&req.process)?;
    set_labels(req, &req.process)?;
    let env = crate::process::environment(&req.process);
    let exec = crate::process::finalize(
        &req.process,
        req.seccomp.as_ref(),
        &env,
        req.preserve_fds,
        &[ch.raw()],
    )?;
    Err(exec.exec().into())
}
