//! `restore --detach`: recreates a container from a CRIU image (`checkpoint`'s output)
//! with the bundle's config.json. The rootfs must be in place (as for `create`); its
//! bind-mount points are made if missing, the cgroup is made and CRIU runs inside it,
//! the stdio pipes recorded at dump are replaced by this process's stdio and a joined
//! network namespace by the bundle's. Invariant (as `create`): on failure the state dir
//! and the cgroup made here are removed again.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use crust_runc::criu;
use crust_runc::state::{self, ContainerState};
use oci_spec::runtime::LinuxNamespaceType;

use super::checkpoint::{make_dir, run_criu, CriuFlags};

/// `restore` flags (runc 1.1).
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// Path to the criu image files to restore from.
    #[arg(long = "image-path", default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// Path for saving work files and logs (default: the image path).
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Path to the root of the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Detach from the container's process (required: crust-runc restores detached only).
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process id to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Path to an AF_UNIX socket for the pty master (not supported).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Disable the use of a subreaper for the restored process (accepted: detached
    /// restores have none).
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Do not use pivot_root (accepted: CRIU restores the mount namespace itself).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Container id.
    pub id: String,
}

/// Removes a half-restored container unless disarmed.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<crust_cgroups::Cgroup>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroup.take() {
            for pid in cg.pids().unwrap_or_default() {
                if pid != std::process::id() as i32 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            // This process is still in it: move out to the root first.
            let _ = std::fs::write(
                "/sys/fs/cgroup/cgroup.procs",
                std::process::id().to_string(),
            );
            if let Err(e) = cg.delete() {
                crust_runc::logging::warn(&format!("remove cgroup: {e}"));
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// This process's cgroup v2 path (`0::PATH` of /proc/self/cgroup), if any.
fn own_cgroup_v2() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Opens `p` without close-on-exec, so CRIU inherits it.
fn open_inheritable(p: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {p:?}"))?;
    Ok(fd)
}

/// Makes the mount point of each bind mount in the rootfs (CRIU mounts onto existing
/// points only), as a file or directory like its source.
fn make_mount_points(spec: &oci_spec::runtime::Spec, rootfs: &Path) {
    for (dest, source) in criu::bind_mounts(spec) {
        let target = rootfs.join(dest.trim_start_matches('/'));
        if target.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = target.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if Path::new(&source).is_dir() {
            let _ = std::fs::create_dir(&target);
        } else {
            let _ = std::fs::File::create(&target);
        }
    }
}

/// Restores the container.
pub fn run(root: &Path, a: &RestoreArgs, systemd: bool, criu_bin: &str) -> Result<i32> {
    if !a.detach {
        bail!("crust-runc restores detached only: pass --detach");
    }
    if a.console_socket.is_some() {
        bail!("--console-socket is not supported by crust-runc restore (terminal containers cannot be checkpointed)");
    }
    let common = a.criu.common()?;
    state::check_id(&a.id)?;
    let bundle =
        std::fs::canonicalize(&a.bundle).with_context(|| format!("bundle {:?}", a.bundle))?;
    let spec = crust_runc::config::load(&bundle)?;
    crust_runc::config::validate(&spec)?;
    let rootfs = crust_runc::config::rootfs_path(&spec, &bundle)?;
    let images = std::fs::canonicalize(&a.image_path)
        .with_context(|| format!("image path {:?}", a.image_path))?;
    let path = images.join(criu::DESCRIPTORS);
    let stdio: Vec<String> = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("read {path:?} (not a checkpoint?)"))?,
    )
    .with_context(|| format!("parse {path:?}"))?;
    let work = make_dir(a.work_path.as_deref().unwrap_or(&images))?;

    // The same private root as create's (restore made it 0755 before).
    let dir = super::create::make_state_dir(root, &a.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
    };
    // CRIU runs in the container's cgroup (this process joins it and CRIU inherits it),
    // and restores the tasks under it.
    let made = super::create::make_cgroup(&spec, &a.id, systemd)?;
    let mut cgroup = None;
    if let Some((cg, resources)) = &made {
        cleanup.cgroup = Some(cg.clone());
        super::create::join_cgroup(cg, resources.as_ref(), std::process::id() as i32)
            .context("join the container's cgroup")?;
        cgroup = Some(cg.clone());
    }
    let cgroup_root = own_cgroup_v2().filter(|p| p != "/");
    make_mount_points(&spec, &rootfs);
    let netns = match criu::joined_ns(&spec, LinuxNamespaceType::Network) {
        Some(p) => {
            Some(open_inheritable(&p).with_context(|| "the network namespace to restore into")?)
        }
        None => None,
    };
    let pid_file = dir.join("restore.pid");
    let args = criu::restore_args(
        &spec,
        &rootfs,
        &images,
        &work,
        &pid_file,
        netns.as_ref().map(|f| f.as_raw_fd()),
        &stdio,
        cgroup_root.as_deref(),
        &common,
    );
    run_criu(criu_bin, &args, &work.join("restore.log"), true)?;
    drop(netns);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("read {pid_file:?}"))?
        .trim()
        .parse()
        .context("CRIU's pid file")?;
    let Some(start_time) = state::start_time(pid) else {
        bail!("the restored init (pid {pid}) exited at once");
    };
    let st = ContainerState {
        version: 1,
        id: a.id.clone(),
        init_pid: pid,
        init_start_time: start_time,
        bundle: bundle.clone(),
        rootfs,
        created: crust_runc::logging::rfc3339(std::time::SystemTime::now(), true),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup,
        config: spec.clone(),
    };
    st.save(&dir)?;
    if let Some(p) = &a.pid_file {
        super::write_pid_file(p, pid)?;
    }
    let _ = std::fs::remove_file(&pid_file);
    cleanup.dir = None;
    cleanup.cgroup = None;
    Ok(0)
}
