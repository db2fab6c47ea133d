//! `start`: releases a created container's init through the exec fifo, then runs the
//! poststart hooks.
//!
//! Exec fifo contract (the init's side is in crust_runc::init): the init opens the write end
//! (blocking until a reader comes), writes one byte, and keeps the write end open, close-on-
//! exec, until its execve. So the releaser reads the byte (the init is released) and then
//! reads until EOF: the container's program runs (or the init died). runc's `start` reads
//! the same way. crust-shim releases crust-runc's init by this same contract.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
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
    // Non-blocking open: succeeds at once; the init's blocked open of the write side then
    // completes. Wait for its byte while checking it still lives, then for EOF.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .with_context(|| format!("open exec fifo {fifo:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut released = false;
    let mut buf = [0u8; 16];
    loop {
        match (&f).read(&mut buf) {
            Ok(0) if released => break,
            Ok(0) => {}
            Ok(_) => {
                released = true;
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("read exec fifo {fifo:?}")),
        }
        if !released {
            if !st.init_alive() {
                bail!(
                    "cannot start a container that has stopped ({})",
                    st.init_gone_reason()
                );
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for the container init on the exec fifo");
            }
        }
        // Until the byte: POLLIN (no POLLHUP before any writer came); after it: POLLHUP at
        // the init's execve. The timeout only bounds the liveness checks.
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&f),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(20u16));
    }
    // The status is "created" while the fifo exists, as runc's (removed after the execve).
    std::fs::remove_file(&fifo).with_context(|| format!("remove exec fifo {fifo:?}"))?;
    let hooks = st.config.hooks().as_ref();
    crust_runc::hooks::run_logged(
        "poststart",
        hooks.and_then(|h| h.poststart().as_ref()),
        &st.hook_state("running", st.init_pid),
    );
    Ok(())
}
