//! `run`: create + start; in the foreground waits for the init, deletes the container and
//! exits with the init's exit code; with `--detach` returns after start.

use std::path::Path;

use anyhow::Result;

use super::create::CreateArgs;

/// `run` flags.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process.
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Disable the use of the subreaper used to reap reparented processes.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

/// Runs the container.
pub fn run(root: &Path, a: &RunArgs, systemd: bool) -> Result<i32> {
    let set = if a.detach {
        None
    } else {
        Some(super::foreground::block_signals()?)
    };
    let (st, console) = super::create::create(root, &a.create, !a.detach, systemd)?;
    if let Err(e) = super::start::start(root, &st) {
        super::delete::destroy(root, &st);
        return Err(e);
    }
    crust_runc::logging::debug("started");
    let Some(set) = set else {
        return Ok(0);
    };
    let code = super::foreground::wait(st.init_pid, &set, console)?;
    crust_runc::logging::debug("init exited");
    if !a.keep {
        super::delete::destroy(root, &st);
        crust_runc::logging::debug("destroyed");
    }
    Ok(code)
}
