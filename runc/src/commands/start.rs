//! `start`: releases a created container's init by reading the exec fifo, then runs the
//! poststart hooks.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crust_runc::state::{self, ContainerState, Status};

/// Starts the container `id`.
pub fn run(root: &Path, id: &str) -> Result<()> {
    let st = super::load(root, id)?;
    start(root, &st)
}

/// Starts a loaded container.
pub fn start(root: &Path, st: &ContainerState) -> Result<()> {
    match st.status(root) {
        Status::Created => {}
        Status::Stopped => bail!(
            "cannot start a container that has stopped ({})",
            st.init_gone_reason()
        ),
        s => bail!(
            "cannot start an already running container (status {})",
            s.as_str()
        ),
    }
    let fifo = state::dir(root, &st.id).join(state::EXEC_FIFO);
    // Non-blocking open: succeeds at once because the init holds the write side open
    // (or is blocked opening it); then wait for its byte while checking it still lives.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .with_context(|| format!("open exec fifo {fifo:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1];
    loop {
        if let Ok(1) = (&f).read(&mut buf) {
            break;
        }
        if !st.init_alive() {
            bail!(
                "cannot start a container that has stopped ({})",
                st.init_gone_reason()
            );
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for the container init on the exec fifo");
        }
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&f),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(20u16));
    }
    drop(f);
    std::fs::remove_file(&fifo).with_context(|| format!("remove exec fifo {fifo:?}"))?;
    let hooks = st.config.hooks().as_ref();
    if hooks.is_some_and(|h| h.poststart().as_ref().is_some_and(|v| !v.is_empty())) {
        wait_for_execve(st);
    }
    crust_runc::hooks::run_logged(
        "poststart",
        hooks.and_then(|h| h.poststart().as_ref()),
        &st.hook_state("running", st.init_pid),
    );
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// poststart hooks run after the user process is executed: wait (briefly) until the init's
/// command line is no longer `crust-runc init`, i.e. startContainer hooks ran and execve
/// happened.
fn wait_for_execve(st: &ContainerState) {
    let cmdline = format!("/proc/{}/cmdline", st.init_pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && st.init_alive() {
        match std::fs::read(&cmdline) {
            Ok(c) if c.starts_with(b"crust-runc\0init\0") => {
                std::thread::sleep(Duration::from_millis(1))
            }
            _ => return,
        }
    }
}
