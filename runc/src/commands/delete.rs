//! `delete [--force] ID`: removes a stopped (or created) container; `--force` kills a
//! running one first. Destroying = kill what is left, remove the cgroup, run poststop
//! hooks, remove the state dir.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use crust_runc::state::{self, ContainerState, StateError, Status};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `delete` flags.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Forcibly delete the container if it is still running (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Container id.
    pub id: String,
}

/// Deletes the container.
pub fn run(root: &Path, a: &DeleteArgs) -> Result<i32> {
    let st = match ContainerState::load(root, &a.id) {
        Ok(st) => st,
        Err(StateError::NotExist { .. }) => {
            // An aborted create may leave a dir without state.json.
            let _ = std::fs::remove_dir_all(state::dir(root, &a.id));
            if a.force {
                return Ok(0);
            }
            bail!("container does not exist");
        }
        Err(e) => return Err(e.into()),
    };
    match st.status(root) {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&st),
        s if a.force => {
            if s == Status::Paused {
                if let Some(cg) = &st.cgroup {
                    let _ = cg.thaw();
                }
            }
            kill_and_wait(&st)
        }
        s => bail!(
            "cannot delete container {} that is not stopped: {}",
            a.id,
            s.as_str()
        ),
    }
    destroy(root, &st);
    Ok(0)
}

/// Waits until `pid` (not our child) is gone, up to `timeout`.
fn wait_gone(st: &ContainerState, timeout: Duration) {
    // SAFETY: pidfd_open takes a pid and flags; the result is a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, st.init_pid, 0) } as i32;
    if raw >= 0 {
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if st.init_alive() {
            let mut p = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&fd),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
            let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(ms));
        }
        return;
    }
    let deadline = std::time::Instant::now() + timeout;
    while st.init_alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs the init and waits for it to go away.
pub fn kill_and_wait(st: &ContainerState) {
    if st.init_alive() {
        let _ = kill(Pid::from_raw(st.init_pid), Signal::SIGKILL);
        wait_gone(st, Duration::from_secs(10));
    }
}

/// Removes everything the container holds. Best effort: problems are logged.
pub fn destroy(root: &Path, st: &ContainerState) {
    if st.init_alive() {
        kill_and_wait(st);
    }
    if let Some(cg) = &st.cgroup {
        // Without a pid namespace, processes may outlive the init.
        for pid in cg.pids().unwrap_or_default() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Err(e) = cg.delete() {
            crust_runc::logging::warn(&format!("remove cgroup: {e}"));
        }
    }
    if !crust_runc::config::has_namespace(&st.config, oci_spec::runtime::LinuxNamespaceType::Mount)
    {
        // The container mounted into its rootfs in our mount namespace.
        if let Err(e) = crust_runc::rootfs::unmount_under(&st.rootfs) {
            crust_runc::logging::warn(&format!("unmount under the rootfs: {e}"));
        }
    }
    let hooks = st.config.hooks().as_ref();
    crust_runc::hooks::run_logged(
        "poststop",
        hooks.and_then(|h| h.poststop().as_ref()),
        &st.hook_state("stopped", 0),
    );
    let _ = std::fs::remove_dir_all(state::dir(root, &st.id));
}
