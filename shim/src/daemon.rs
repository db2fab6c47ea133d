//! The shim daemon (`serve`): detach from the caller, become a child subreaper, and serve
//! the Task API over ttrpc on the listener inherited as fd 3, on a single-threaded tokio
//! runtime (the shim's memory budget is ~1.5 MB RSS; see [`crate::memory`]).
//!
//! The Task service is registered as both `containerd.task.v2.Task` (containerd 1.x)
//! and `containerd.task.v3.Task` (containerd 2.x). The process exits once its last
//! container is deleted (unless `-keep-empty`), or on Shutdown/SIGTERM while it has
//! none; it never exits while it has containers.

use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::shim_async::create_task;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, Notify};

use crate::args::Args;
use crate::events::{Publisher, Sink};
use crate::reaper::Reaper;
use crate::task::{Config, Service};

/// ttrpc service names the Task API answers to.
pub const TASK_SERVICES: [&str; 2] = ["containerd.task.v2.Task", "containerd.task.v3.Task"];

/// Errors of the daemon's start-up.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("setting child subreaper: {0}")]
    Subreaper(std::io::Error),
    #[error("building runtime: {0}")]
    Runtime(std::io::Error),
    #[error("listener on fd 3: {0}")]
    Listener(std::io::Error),
    #[error("starting ttrpc server: {0}")]
    Server(ttrpc::Error),
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// Runs the daemon until it decides to exit.
pub fn serve(args: &Args) -> Result<(), DaemonError> {
    // fd 3 arrives without close-on-exec (dup2 clears it): set it before anything can
    // spawn, or every runtime command and the init of a created container inherits the
    // listening socket, keeping it accepting (and every call to this pod hanging) after
    // this process died (issue 18 item 5).
    // SAFETY: fcntl on fd 3 with integer arguments only; it fails harmlessly if fd 3 is
    // not open (then `run` reports the missing listener).
    unsafe {
        let fl = libc::fcntl(3, libc::F_GETFD);
        if fl >= 0 {
            libc::fcntl(3, libc::F_SETFD, fl | libc::FD_CLOEXEC);
        }
    }
    start_background_setup(args);
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer argument and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(DaemonError::Subreaper(std::io::Error::last_os_error()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(DaemonError::Runtime)?;
    rt.block_on(run(args))
}

/// Start-up work the Task API does not wait for, on a short-lived thread: leaving the
/// caller's cgroup and finding the code mappings to trim.
///
/// Moving a process between cgroups (a write to `cgroup.procs`) takes the kernel's
/// threadgroup rwsem for writing, which first waits for an RCU grace period when no other
/// migration happened in the last few tens of milliseconds: 7–15 ms measured here, more
/// than the rest of the shim's start-up. Nothing the shim serves depends on the move (the
/// runtime puts containers in their own cgroups), so the first Create is served while it
/// happens, and the runtime's own move of the container's init then finds the grace
/// period already under way or past. If the thread cannot be started the work is done
/// inline.
fn start_background_setup(args: &Args) {
    let (cgroup, debug) = (args.shim_cgroup.clone(), args.debug);
    let spawned = std::thread::Builder::new()
        .name("setup".into())
        .stack_size(64 * 1024)
        .spawn(move || background_setup(cgroup.as_deref(), debug));
    if spawned.is_err() {
        background_setup(args.shim_cgroup.as_deref(), args.debug);
    }
}

fn background_setup(shim_cgroup: Option<&str>, debug: bool) {
    for e in crust_cgroups::leave_caller_cgroup(shim_cgroup) {
        if debug {
            eprintln!("crust-shim: leaving caller cgroup: {e}");
        }
    }
    crate::memory::find_clean_mappings();
}

async fn run(args: &Args) -> Result<(), DaemonError> {
    // SAFETY: `start` passes the bound listening socket as fd 3 and nothing else uses it.
    let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(3) };
    std_listener
        .set_nonblocking(true)
        .map_err(DaemonError::Listener)?;
    let sock_path = std_listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(PathBuf::from));
    let listener =
        tokio::net::UnixListener::from_std(std_listener).map_err(DaemonError::Listener)?;

    let (exit_tx, exit_rx) = mpsc::unbounded_channel();
    let reaper = Reaper::start(exit_tx).map_err(DaemonError::Signal)?;
    let sink = match std::env::var("TTRPC_ADDRESS") {
        Ok(a) if !a.is_empty() => Sink::Ttrpc(a),
        _ if !args.publish_binary.is_empty() => Sink::Binary {
            binary: args.publish_binary.clone().into(),
            address: args.address.clone(),
        },
        _ => Sink::Discard,
    };
    let events = Publisher::start(sink, args.namespace.clone(), reaper.clone());
    let shutdown = Arc::new(Notify::new());
    let console_dir = sock_path
        .as_ref()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| args.state_dir.clone());
    let cfg = Config {
        namespace: args.namespace.clone(),
        runtime_binary: args.runtime.clone(),
        runtime_root: args.runtime_root(),
        console_dir,
        keep_empty: args.keep_empty,
    };
    let service = Service::new(cfg, reaper, events, shutdown.clone(), exit_rx);

    let mut services = create_task(Arc::new(service.clone()));
    let mut v2 = create_task(Arc::new(service.clone()));
    if let Some(s) = v2.remove(TASK_SERVICES[1]) {
        services.insert(TASK_SERVICES[0].to_string(), s);
    }
    let mut server = ttrpc::asynchronous::Server::new()
        .add_listener(listener.into())
        .register_service(services);
    server.start().await.map_err(DaemonError::Server)?;
    // Start-up code is done with: drop its pages once idle.
    service.inner.trimmer.poke();

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    loop {
        tokio::select! {
            _ = shutdown.notified() => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if service.container_count() == 0 {
            break;
        }
    }
    // New clients must start a new shim; let in-flight replies reach their clients.
    if let Some(p) = &sock_path {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p.with_extension("log"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
