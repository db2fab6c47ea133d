//! The pod-level init of a pod that shares one PID namespace between its containers
//! (NamespaceOption pid=POD): what containerd's pause process is for such pods. crust has
//! no pause image, so crustd re-executes itself as `crustd --pod-init <pod> <state>`; that
//! process unshares a PID namespace and forks the init (PID 1 there), prints the init's
//! host pid on stdout and exits. The init reaps orphans and sleeps until killed; containers join its
//! namespace through the pin `<state>/ns/<pod>/pid`, so the namespace does not end with
//! the pod's first container.
//!
//! The init lives in the pod's cgroup, in a leaf of its own (`crate::runtime::cgroup::child`:
//! `<cgroup parent>/<pod id>` in every hierarchy, or with the systemd driver the scope
//! `crust-<pod id>.scope` in the pod's slice), as containerd's pause container does (a leaf,
//! so that a v2 pod cgroup keeps no process of its own and can still delegate controllers to
//! its containers). With cgroupfs the init moves itself there once it has let go of the
//! launcher's pipes, so the move (which on cgroup v1 can wait for an RCU grace period) is
//! never on RunPodSandbox's path; a scope is started by crustd with the init in it. The leaf
//! is removed once the init is dead ([`stop`]).
//!
//! Invariants: the init is killed only after its namespace inode is checked against the
//! pin (a recycled pid is never signalled); killing it ends every process of the pod's
//! PID namespace, as the pause process's death does under containerd; its cgroup leaf is
//! removed only after it has exited.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::runtime::error::{io, Result, RuntimeError};

/// The argument that turns crustd into a pod init launcher (checked before anything else
/// in crustd's `main`).
pub const POD_INIT_ARG: &str = "--pod-init";

/// The pin of `pod_id`'s PID namespace.
pub fn pin_path(state: &Path, pod_id: &str) -> PathBuf {
    crate::nspin::path(state, pod_id, "pid")
}

/// Starts the pod init of `pod_id` from crustd's own binary and pins its PID namespace;
/// returns (pin, host pid of the init). The init moves itself into the cgroupfs path
/// `cgroup` (empty: it stays where it is) after this returns.
/// With `userns` (the pin of the pod's user namespace) the init joins it first, so the PID
/// namespace is owned by it.
pub async fn start(
    state: &Path,
    pod_id: &str,
    cgroup: &str,
    userns: Option<&Path>,
) -> Result<(PathBuf, u32)> {
    let err = |message: String| RuntimeError::PodInit {
        pod: pod_id.into(),
        message,
    };
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.arg(POD_INIT_ARG)
        .arg(pod_id)
        // Only for whoever reads the command line (crustd's state dir: whose init it is).
        .arg(state)
        .arg(cgroup);
    if let Some(u) = userns {
        cmd.arg(u);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| err(format!("exec crustd {POD_INIT_ARG}: {e}")))?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
    let pin = pin_path(state, pod_id);
    let r = (|| {
        crate::nspin::prepare(&pin).map_err(io("create", &pin))?;
        crate::nspin::bind(&format!("/proc/{pid}/ns/pid"), &pin).map_err(|source| {
            RuntimeError::Io {
                op: "pin pid namespace",
                path: pin.clone(),
                source,
            }
        })
    })();
    if let Err(e) = r {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = std::fs::remove_file(&pin);
        // It may already have made and joined its leaf.
        wait_exited(pid as i32);
        remove_cgroup(cgroup);
        return Err(e);
    }
    Ok((pin, pid))
}

/// Whether `pid` is the init of the namespace pinned at `pin`.
pub fn alive(pin: &Path, pid: u32) -> bool {
    match (
        std::fs::metadata(pin),
        std::fs::metadata(format!("/proc/{pid}/ns/pid")),
    ) {
        (Ok(a), Ok(b)) => pid > 0 && a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Kills the init `pid` (if it is still the pin's), unpins the namespace and, once the
/// init has exited, removes its cgroupfs leaf `cgroup` (empty: none). Idempotent;
/// blocks for as long as the init takes to die (bounded).
pub fn stop(pin: &Path, pid: u32, cgroup: &str) {
    if alive(pin, pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        wait_exited(pid as i32);
    }
    let _ = crate::nspin::unpin(pin);
    remove_cgroup(cgroup);
}

/// Waits (up to 2 s) until `pid` has exited: gone or a zombie (which has left its cgroups).
pub(crate) fn wait_exited(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        // Bytes: a process may give itself a non-UTF-8 name. The state follows the command
        // name, which may hold spaces and parentheses.
        let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .iter()
            .rposition(|&b| b == b')')
            .and_then(|i| stat.get(i + 2).copied());
        match state {
            None | Some(b'Z' | b'X') => return,
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

/// Removes the init's cgroup leaf `cgroup` in every hierarchy (missing is fine).
fn remove_cgroup(cgroup: &str) {
    if cgroup.trim_matches('/').is_empty() {
        return;
    }
    match crust_cgroups::Cgroup::new(Some(cgroup), "pod-init").and_then(|c| c.delete()) {
        Ok(()) => {}
        Err(e) => tracing::warn!(cgroup, error = %e, "remove the pod init's cgroup"),
    }
}

/// Warns when the init `pid` of `pod` has not reached its cgroup `cgroup` a second after
/// its start (it cannot report that itself: its output is gone by then).
pub async fn check_cgroup(pod: String, pid: u32, cgroup: String) {
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let Ok(own) = tokio::fs::read_to_string(format!("/proc/{pid}/cgroup")).await else {
        return; // already gone (the pod was stopped)
    };
    if !own
        .lines()
        .any(|l| l.splitn(3, ':').nth(2) == Some(cgroup.as_str()))
    {
        tracing::warn!(pod = %pod, pid, cgroup = %cgroup, cgroups = %own.replace('\n', " "), "the pod init is not in its cgroup");
    }
}

/// `crustd --pod-init <pod> <state> [<cgroup> [<userns pin>]]`: join the pod's user
/// namespace if given, unshare a PID namespace, fork its init, print the init's pid and
/// exit. Runs before crustd starts any thread, so setns(user) and fork are allowed.
pub fn launch_main() -> ! {
    use nix::sched::{setns, unshare, CloneFlags};
    use nix::unistd::{fork, ForkResult};
    if let Some(u) = std::env::args_os().nth(5) {
        let joined = std::fs::File::open(&u)
            .and_then(|f| setns(&f, CloneFlags::CLONE_NEWUSER).map_err(std::io::Error::from));
        if let Err(e) = joined {
            eprintln!("join user namespace {}: {e}", Path::new(&u).display());
            std::process::exit(1);
        }
    }
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        eprintln!("unshare pid namespace: {e}");
        std::process::exit(1);
    }
    // SAFETY: single-threaded here (crustd's main calls this before creating threads).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{child}");
            let _ = out.flush();
            std::process::exit(0);
        }
        Ok(ForkResult::Child) => init(std::env::args().nth(4)),
        Err(e) => {
            eprintln!("fork pod init: {e}");
            std::process::exit(1);
        }
    }
}

/// PID 1 of the pod's namespace: detach, move into `cgroup`, reap every child, never exit
/// by itself.
fn init(cgroup: Option<String>) -> ! {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    // SIGCHLD is blocked first, so none that arrives during the cgroup move is lost.
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let _ = set.thread_block();
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd as _;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard fds of this single-threaded process.
            unsafe {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
    // SAFETY: PR_SET_NAME takes a pointer to a NUL-terminated string that outlives the call.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"crust-pod-init".as_ptr(), 0, 0, 0);
    }
    // The launcher's pipes are closed (crustd has its answer): the move costs RunPodSandbox
    // nothing. A failure leaves the init where it is; crustd notices (check_cgroup).
    if let Some(cg) = cgroup.filter(|c| !c.trim_matches('/').is_empty()) {
        let _ = join_cgroup(&cg);
    }
    loop {
        while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if st == WaitStatus::StillAlive {
                break;
            }
        }
        let _ = set.wait();
    }
}

/// Creates `cgroup` in every hierarchy and moves the calling process into it.
fn join_cgroup(cgroup: &str) -> std::result::Result<(), crust_cgroups::CgroupError> {
    let cg = crust_cgroups::Cgroup::new(Some(cgroup), "pod-init")?;
    cg.create()?;
    // cgroup.procs takes pids of the writer's PID namespace, where the init is 1.
    cg.add_process(1)
}

/// Kills every process in the PID namespace pinned at `pin` (a pod with no record: its
/// init's pid and cgroup are unknown), unpins it and removes the init's cgroup leaf (found
/// in `/proc/<pid>/cgroup`: the one named after the pod, `<state>/ns/<pod>/pid`).
pub fn stop_pinned(pin: &Path) {
    let pod = pin
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut killed = Vec::new();
    let mut leaves = std::collections::BTreeSet::new();
    if let Ok(want) = std::fs::metadata(pin) {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(m) = std::fs::metadata(e.path().join("ns/pid")) {
                if m.ino() == want.ino() && m.dev() == want.dev() {
                    let cgroups = std::fs::read_to_string(e.path().join("cgroup"));
                    for l in cgroups.unwrap_or_default().lines() {
                        let path = l.splitn(3, ':').nth(2).unwrap_or_default();
                        if !pod.is_empty() && path.ends_with(&format!("/{pod}")) {
                            leaves.insert(path.to_string());
                        }
                    }
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    killed.push(pid);
                }
            }
        }
    }
    for pid in killed {
        wait_exited(pid);
    }
    let _ = crate::nspin::unpin(pin);
    for leaf in leaves {
        remove_cgroup(&leaf);
    }
}

/// Kills every pod init (and init launcher) of this crustd (`state`, as its command line
/// names it) whose pod is not in `recorded`, waits for each to exit and removes the init's
/// cgroupfs leaf; returns those pods' ids. A crash inside RunPodSandbox between the
/// launcher's start and the pin of the namespace leaves an init nothing else finds: no pin
/// to find it by ([`stop_pinned`]), and it moves itself into its cgroup whenever it gets to
/// it, possibly after recovery has swept the pod cgroups. Blocking.
pub fn kill_unrecorded(state: &Path, recorded: &std::collections::HashSet<String>) -> Vec<String> {
    let mut pods = std::collections::BTreeSet::new();
    // A launcher can fork its init between one scan and the kill: scan until none is left.
    for _ in 0..10 {
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let [_, arg, pod, st, rest @ ..] = args.as_slice() else {
                continue;
            };
            if *arg != POD_INIT_ARG.as_bytes()
                || *st != state.as_os_str().as_encoded_bytes()
                || recorded.contains(&*String::from_utf8_lossy(pod))
            {
                continue;
            }
            let pod = String::from_utf8_lossy(pod).into_owned();
            let cgroup = rest
                .first()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_default();
            tracing::warn!(pod = %pod, pid, "killing the pod init of a pod without a record");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            found.push((pid, pod, cgroup));
        }
        if found.is_empty() {
            break;
        }
        for (pid, pod, cgroup) in found {
            wait_exited(pid);
            remove_cgroup(&cgroup);
            pods.insert(pod);
        }
    }
    pods.into_iter().collect()
}
