//! The pod-level init of a pod that shares one PID namespace between its containers
//! (NamespaceOption pid=POD): what containerd's pause process is for such pods. crust has
//! no pause image, so crustd re-executes itself as `crustd --pod-init <pod> <state>`; that
//! process unshares a PID namespace and forks the init (PID 1 there), prints the init's
//! host pid on stdout and exits. The init reaps orphans and sleeps until killed; containers join its
//! namespace through the pin `<state>/ns/<pod>/pid`, so the namespace does not end with
//! the pod's first container.
//!
//! Invariants: the init is killed only after its namespace inode is checked against the
//! pin (a recycled pid is never signalled); killing it ends every process of the pod's
//! PID namespace, as the pause process's death does under containerd.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::error::{io, Result, RuntimeError};

/// The argument that turns crustd into a pod init launcher (checked before anything else
/// in crustd's `main`).
pub const POD_INIT_ARG: &str = "--pod-init";

/// The pin of `pod_id`'s PID namespace.
pub fn pin_path(state: &Path, pod_id: &str) -> PathBuf {
    state.join("ns").join(pod_id).join("pid")
}

/// Starts the pod init of `pod_id` from crustd's own binary and pins its PID namespace;
/// returns (pin, host pid of the init).
pub async fn start(state: &Path, pod_id: &str) -> Result<(PathBuf, u32)> {
    let err = |message: String| RuntimeError::PodInit {
        pod: pod_id.into(),
        message,
    };
    let out = tokio::process::Command::new("/proc/self/exe")
        .arg(POD_INIT_ARG)
        .arg(pod_id)
        // Only for whoever reads the command line (crustd's state dir: whose init it is).
        .arg(state)
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
        if let Some(d) = pin.parent() {
            std::fs::create_dir_all(d).map_err(io("create", d))?;
        }
        std::fs::File::create(&pin).map_err(io("create", &pin))?;
        mount(
            Some(format!("/proc/{pid}/ns/pid").as_str()),
            &pin,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| RuntimeError::Io {
            op: "pin pid namespace",
            path: pin.clone(),
            source: e.into(),
        })
    })();
    if let Err(e) = r {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = std::fs::remove_file(&pin);
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

/// Kills the init `pid` (if it is still the pin's) and unpins the namespace. Idempotent.
pub fn stop(pin: &Path, pid: u32) {
    if alive(pin, pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = umount2(pin, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(pin);
}

/// `crustd --pod-init <pod> <state>`: unshare a PID namespace, fork its init, print the init's
/// pid and exit. Runs before crustd starts any thread, so fork is safe.
pub fn launch_main() -> ! {
    use nix::sched::{unshare, CloneFlags};
    use nix::unistd::{fork, ForkResult};
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
        Ok(ForkResult::Child) => init(),
        Err(e) => {
            eprintln!("fork pod init: {e}");
            std::process::exit(1);
        }
    }
}

/// PID 1 of the pod's namespace: detach, reap every child, never exit by itself.
fn init() -> ! {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
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
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let _ = set.thread_block();
    loop {
        let _ = set.wait();
        while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if st == WaitStatus::StillAlive {
                break;
            }
        }
    }
}

/// Kills every process in the PID namespace pinned at `pin` (a pod with no record: its
/// init's pid is unknown) and unpins it.
pub fn stop_pinned(pin: &Path) {
    if let Ok(want) = std::fs::metadata(pin) {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(m) = std::fs::metadata(e.path().join("ns/pid")) {
                if m.ino() == want.ino() && m.dev() == want.dev() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
    let _ = umount2(pin, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(pin);
}
