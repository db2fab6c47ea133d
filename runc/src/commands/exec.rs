//! `exec`: runs a new process in a running (or created) container. The process comes from
//! `--process p.json` or from the container's own `process` with args and flag overrides,
//! like runc.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use crust_runc::spawn::{self, Options};
use crust_runc::state::Status;
use oci_spec::runtime::{Capability, Process};

/// `exec` flags (runc 1.1).
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Path to an AF_UNIX socket which will receive the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Current working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set environment variables (KEY=VALUE, repeatable).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids (repeatable).
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Path to the process.json.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Detach from the container's process.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process id to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Set the asm process label for the process commonly used with selinux.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Set the apparmor profile for the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set the no new privileges value for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability to the bounding, effective, permitted, inheritable and ambient sets.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Pass N additional file descriptors (3..3+N) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in a sub-cgroup (accepted; not supported yet).
    #[arg(long, hide = true)]
    pub cgroup: Vec<String>,
    /// Container id.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn build_process(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    if let Some(p) = &a.process {
        let text = std::fs::read(p).with_context(|| format!("read process {p:?}"))?;
        let proc: Process = crust_runc::config::parse_json(p, &text)?;
        if proc.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("args: process args must not be empty");
        }
        return Ok(proc);
    }
    if a.command.is_empty() {
        bail!("exec args cannot be empty");
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(c) = &a.cwd {
        p.set_cwd(c.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .with_context(|| format!("--user {u:?}: uid must be numeric"))?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            let g: u32 = g
                .parse()
                .with_context(|| format!("--user {u:?}: gid must be numeric"))?;
            p.user_mut().set_gid(g);
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(ap) = &a.apparmor {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let name = c.strip_prefix("CAP_").unwrap_or(c);
            let cap: Capability = name
                .parse()
                .map_err(|_| anyhow::anyhow!("--cap: unknown capability {c:?}"))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
                caps.inheritable().clone(),
                caps.ambient().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    2 => caps.set_permitted(Some(s)),
                    3 => caps.set_inheritable(Some(s)),
                    _ => caps.set_ambient(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// Runs `exec`.
pub fn run(root: &Path, a: &ExecArgs) -> Result<i32> {
    let st = super::load(root, &a.id)?;
    match st.status(root) {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused => bail!("cannot exec in a paused container"),
        _ => {}
    }
    let process = build_process(st.config.process().as_ref(), a)?;
    let tty = process.terminal().unwrap_or(false);
    if tty && a.detach && a.console_socket.is_none() {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    if !tty && a.console_socket.is_some() {
        bail!("--console-socket given but the process has no terminal");
    }
    let set = if a.detach {
        None
    } else {
        Some(super::foreground::block_signals()?)
    };
    let mut req = spawn::exec_request(&st.config, process, st.init_pid, a.preserve_fds);
    if let Some(s) = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        // The filter `create` compiled; a state dir without it (older crust-runc) compiles.
        let saved = crust_runc::state::load_seccomp(&crust_runc::state::dir(root, &a.id));
        req.seccomp = Some(match saved {
            Some(p) => p,
            None => crust_runc::seccomp::compile(s)
                .and_then(|f| f.program())
                .context("linux.seccomp")?,
        });
    }
    let mut no_hooks = |_pid: i32| -> Result<(), String> { Ok(()) };
    let spawned = spawn::spawn(
        req,
        Options {
            cgroup: &mut || Ok(st.cgroup.clone()),
            console_socket: a.console_socket.as_deref(),
            on_hooks: &mut no_hooks,
            subreaper: true,
        },
    )
    .map_err(|e| anyhow::anyhow!(crust_runc::init::chain(&e)))?;
    if let Some(p) = &a.pid_file {
        super::write_pid_file(p, spawned.pid)?;
    }
    match set {
        None => Ok(0),
        Some(set) => super::foreground::wait(spawned.pid, &set, spawned.console),
    }
}
