//! `kill [--all] ID [SIGNAL]`: signals the init (or every process of the cgroup).

use std::path::Path;

use anyhow::{bail, Result};
use crust_runc::state::Status;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// `kill` flags.
#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Send the signal to all processes in the container.
    #[arg(short, long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Sends the signal.
pub fn run(root: &Path, a: &KillArgs) -> Result<i32> {
    let st = super::load(root, &a.id)?;
    let sig = crust_runc::signal::parse(&a.signal)?;
    if st.status(root) == Status::Stopped {
        bail!("container not running");
    }
    if a.all {
        if let Some(cg) = &st.cgroup {
            // Freeze so no process forks away from the signal (runc does the same).
            let frozen = cg.freeze().is_ok();
            for pid in cg.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(pid), sig);
            }
            if frozen {
                let _ = cg.thaw();
            }
            return Ok(0);
        }
    }
    kill(Pid::from_raw(st.init_pid), sig)?;
    Ok(0)
}
