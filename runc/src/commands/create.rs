//! `create`: validates the bundle, then state dir, exec fifo, cgroup, init process.
//! Invariant: on failure everything created here is removed again (a bad config.json
//! leaves no state dir, cgroup or process behind).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use crust_runc::config;
use crust_runc::spawn::{self, Options};
use crust_runc::state::{self, ContainerState};
use oci_spec::runtime::LinuxResources;

/// `create` flags (runc 1.1).
#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the root of the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the process id to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root to jail the process inside the rootfs.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

/// Undoes a half-made container unless disarmed.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<crust_cgroups::Cgroup>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.delete() {
                crust_runc::logging::warn(&format!("remove cgroup: {e}"));
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The container's cgroup and its resources as the cgroup layer takes them.
pub(super) type Made = (crust_cgroups::Cgroup, Option<LinuxResources>);

/// Resolves the container's cgroup. cgroupfs: creates it and applies the resources (the init
/// joins it in [`join_cgroup`]). systemd: nothing exists until [`join_cgroup`] starts the
/// scope with the init in it, so only the resources are checked here.
pub(super) fn make_cgroup(
    spec: &oci_spec::runtime::Spec,
    id: &str,
    systemd: bool,
) -> Result<Option<Made>> {
    let linux = spec.linux().as_ref();
    let path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    // Always applied: without rules of its own the container still gets the default
    // whitelist (as runc), never the parent cgroup's device access.
    let none = oci_spec::runtime::LinuxResources::default();
    let r = config::cgroup_resources(linux.and_then(|l| l.resources().as_ref()).unwrap_or(&none));
    if systemd {
        // runc's default for a missing cgroupsPath is `system.slice:runc:<id>`.
        let cg = crust_cgroups::Cgroup::new_systemd(path.as_deref(), id, "crust")
            .context("linux.cgroupsPath")?;
        return Ok(Some((cg, Some(r))));
    }
    let cg = crust_cgroups::Cgroup::new(path.as_deref(), id).context("linux.cgroupsPath")?;
    cg.create().context("create cgroup")?;
    if let Err(e) = cg.apply(&r) {
        let _ = cg.delete();
        return Err(e).context("linux.resources");
    }
    Ok(Some((cg, None)))
}

/// Puts `pid` (the init) into the cgroup: systemd starts the scope with it and the
/// resources; cgroupfs writes cgroup.procs.
pub(super) fn join_cgroup(
    cg: &crust_cgroups::Cgroup,
    resources: Option<&LinuxResources>,
    pid: i32,
) -> Result<(), crust_cgroups::CgroupError> {
    if cg.systemd_unit().is_some() {
        cg.start_scope(pid, resources)
    } else {
        cg.add_process(pid)
    }
}

/// Creates the container; returns its state (the init waits on the exec fifo).
/// Makes the container's state directory under `root`, refusing an id in use. runc keeps
/// its root private (0700): state.json holds the whole config. create and restore share it.
pub(super) fn make_state_dir(root: &Path, id: &str) -> Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("create root {root:?}"))?;
    let dir = state::dir(root, id);
    match std::fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {id}")
        }
        Err(e) => Err(e).with_context(|| format!("create state dir {dir:?}")),
    }
}

pub fn run(root: &Path, a: &CreateArgs, systemd: bool) -> Result<ContainerState> {
    create(root, a, false, systemd).map(|(st, _)| st)
}

/// `create`; `foreground` (for `run`) makes this process the init's subreaper and, for a
/// terminal without console socket, returns the pty master to proxy. `systemd`: the
/// cgroup is a transient scope (`--systemd-cgroup`).
pub fn create(
    root: &Path,
    a: &CreateArgs,
    foreground: bool,
    systemd: bool,
) -> Result<(ContainerState, Option<std::os::fd::OwnedFd>)> {
    let subreaper = foreground;
    state::check_id(&a.id)?;
    let bundle =
        std::fs::canonicalize(&a.bundle).with_context(|| format!("bundle {:?}", a.bundle))?;
    let spec = config::load(&bundle)?;
    config::validate(&spec)?;
    crust_runc::logging::debug("config loaded");
    let rootfs = config::rootfs_path(&spec, &bundle)?;
    // Compiled once, here: the init only installs the program (see seccomp::Program).
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(
            crust_runc::seccomp::compile(s)
                .and_then(|f| f.program())
                .context("linux.seccomp")?,
        ),
        None => None,
    };
    if let Some(sock) = &a.console_socket {
        if !spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
        {
            bail!("--console-socket given but process.terminal is false");
        }
        if !sock.exists() {
            bail!("console socket {sock:?} does not exist");
        }
    } else if !foreground
        && spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    {
        bail!("process.terminal is true: cannot allocate tty if runc will detach without setting console socket");
    }

    let dir = make_state_dir(root, &a.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
    };
    let fifo = dir.join(state::EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_context(|| format!("create exec fifo {fifo:?}"))?;
    // mkfifo honours the umask; runc's fifo is 0622.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .context("chmod exec fifo")?;

    let annotations = spec.annotations().clone().unwrap_or_default();
    let mut st = ContainerState {
        version: 1,
        id: a.id.clone(),
        init_pid: 0,
        init_start_time: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: crust_runc::logging::rfc3339(std::time::SystemTime::now(), true),
        owner: String::new(),
        annotations,
        cgroup: None,
        config: spec.clone(),
    };
    let hook_state: serde_json::Value =
        serde_json::from_str(&st.hook_state("creating", 0)).unwrap_or_default();
    let keyring = (!a.no_new_keyring).then(|| format!("_ses.{}", a.id));
    if let Some(p) = &seccomp {
        // exec installs the same filter; it need not compile the profile again.
        state::save_seccomp(&dir, p)?;
    }
    let mut req = spawn::create_request(
        &spec,
        &rootfs,
        &fifo,
        a.no_pivot,
        a.preserve_fds,
        keyring,
        hook_state,
    );
    req.seccomp = seccomp;
    let hooks = spec.hooks().clone();
    let st_for_hooks = st.clone();
    let mut on_hooks = |pid: i32| -> Result<(), String> {
        // runtime-spec 1.0: prestart hooks see the container "created" (they were meant to
        // run at start); createRuntime hooks run while it is "creating".
        let h = hooks.as_ref();
        crust_runc::hooks::run(
            "prestart",
            h.and_then(|h| h.prestart().as_ref()),
            &st_for_hooks.hook_state("created", pid),
        )
        .and_then(|_| {
            crust_runc::hooks::run(
                "createRuntime",
                h.and_then(|h| h.create_runtime().as_ref()),
                &st_for_hooks.hook_state("creating", pid),
            )
        })
        .map_err(|e| e.to_string())
    };
    // The cgroup is made while the init process starts up (spawn calls this right after
    // starting it). The init is moved in before it does anything when it gets a new cgroup
    // namespace, otherwise while it sets up its rootfs (`Request::late_cgroup`).
    let made = std::cell::RefCell::new(None::<Made>);
    let mut make = || -> Result<Option<crust_cgroups::Cgroup>, String> {
        let m = make_cgroup(&spec, &a.id, systemd).map_err(|e| format!("{e:#}"))?;
        let cg = m.as_ref().map(|(cg, _)| cg.clone());
        *made.borrow_mut() = m;
        crust_runc::logging::debug("cgroup created");
        Ok(cg)
    };
    // spawn calls `make` before `join`, so the resources are there when the scope starts.
    // A scope that did not start is not ours to stop: its name may be a live container's.
    let joined = std::cell::Cell::new(false);
    let mut join = |cg: &crust_cgroups::Cgroup, pid: i32| {
        let m = made.borrow();
        join_cgroup(cg, m.as_ref().and_then(|(_, r)| r.as_ref()), pid)?;
        joined.set(true);
        Ok(())
    };
    let spawned = spawn::spawn(
        req,
        Options {
            cgroup: &mut make,
            join: &mut join,
            console_socket: a.console_socket.as_deref(),
            on_hooks: &mut on_hooks,
            subreaper,
        },
    );
    let made = made.into_inner().map(|(cg, _)| cg);
    let ours = joined.get() || made.as_ref().is_some_and(|cg| cg.systemd_unit().is_none());
    cleanup.cgroup = made.clone().filter(|_| ours);
    st.cgroup = made;
    let spawned = spawned.map_err(|e| anyhow::anyhow!(crust_runc::init::chain(&e)))?;

    st.init_pid = spawned.pid;
    crust_runc::logging::debug("init ready");
    // Never record 0: no live process has it, so `start` would call the init stopped.
    let Some(start_time) = state::start_time(spawned.pid) else {
        bail!("container init (pid {}) exited during create", spawned.pid);
    };
    st.init_start_time = start_time;
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        spawn::set_oom_score_adj(spawned.pid, adj);
    }
    let finish = || -> Result<()> {
        st.save(&dir)?;
        if let Some(p) = &a.pid_file {
            super::write_pid_file(p, spawned.pid)?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(spawned.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        return Err(e);
    }
    cleanup.dir = None;
    cleanup.cgroup = None;
    Ok((st, spawned.console))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    /// create and restore make the state root private and refuse an id already in use.
    #[test]
    fn state_dir_root_is_private_and_ids_are_unique() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("runc-root");
        let dir = super::make_state_dir(&root, "c1").unwrap();
        assert!(dir.is_dir());
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "root {root:?} is {mode:o}");
        let e = super::make_state_dir(&root, "c1").unwrap_err();
        assert!(
            e.to_string().contains("container with id exists: c1"),
            "{e}"
        );
    }
}
