//! One file per runc verb. Each `run` returns the process exit code, or an error that
//! `main` logs the runc way and turns into exit code 1.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod foreground;
mod kill;
mod list;
mod pause;
mod ps;
mod restore;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use crust_runc::state::ContainerState;

pub use exec::ExecArgs;

/// The runc commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its process waits until `start`).
    Create(create::CreateArgs),
    /// Execute the user-defined process in a created container.
    Start(IdArg),
    /// Create and run a container.
    Run(run::RunArgs),
    /// Checkpoint a running container with CRIU.
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a previous checkpoint (CRIU).
    Restore(restore::RestoreArgs),
    /// Output the state of a container.
    State(IdArg),
    /// Send a signal to the container's init process (default SIGTERM).
    Kill(kill::KillArgs),
    /// Delete any resources held by the container.
    Delete(delete::DeleteArgs),
    /// Execute a new process inside the container.
    Exec(ExecArgs),
    /// List containers started with the given root.
    List(list::ListArgs),
    /// Display the processes running inside a container.
    Ps(ps::PsArgs),
    /// Suspend all processes inside the container.
    Pause(IdArg),
    /// Resume all processes that have been previously paused.
    Resume(IdArg),
    /// Update container resource constraints.
    Update(update::UpdateArgs),
    /// Create a new specification file (config.json).
    Spec(spec::SpecArgs),
    /// Show the enabled features (JSON).
    Features,
    /// Display container events such as OOM notifications and resource usage statistics.
    Events(events::EventsArgs),
}

/// A command taking only the container id.
#[derive(clap::Args, Debug)]
pub struct IdArg {
    /// Container id.
    pub id: String,
}

/// Dispatches to the command.
pub fn run(cli: &crate::Cli, command: &Command) -> Result<i32> {
    let root = cli.root.as_path();
    let criu = cli.criu.as_deref().unwrap_or("criu");
    match command {
        Command::Create(a) => create::run(root, a, cli.systemd_cgroup).map(|_| 0),
        Command::Start(a) => start::run(root, &a.id).map(|_| 0),
        Command::Run(a) => run::run(root, a, cli.systemd_cgroup),
        Command::Checkpoint(a) => checkpoint::run(root, a, criu),
        Command::Restore(a) => restore::run(root, a, cli.systemd_cgroup, criu),
        Command::State(a) => state::run(root, &a.id),
        Command::Kill(a) => kill::run(root, a),
        Command::Delete(a) => delete::run(root, a),
        Command::Exec(a) => exec::run(root, a),
        Command::List(a) => list::run(root, a),
        Command::Ps(a) => ps::run(root, a),
        Command::Pause(a) => pause::pause(root, &a.id),
        Command::Resume(a) => pause::resume(root, &a.id),
        Command::Update(a) => update::run(root, a),
        Command::Spec(a) => spec::run(a),
        Command::Features => features::run(),
        Command::Events(a) => events::run(root, a),
    }
}

/// Loads a container's state.
pub fn load(root: &Path, id: &str) -> Result<ContainerState> {
    Ok(ContainerState::load(root, id)?)
}

/// Writes `pid` to `path` atomically (temp file + rename), as runc does.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    use anyhow::Context;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write pid file {tmp:?}"))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write pid file {path:?}"))?;
    Ok(())
}
