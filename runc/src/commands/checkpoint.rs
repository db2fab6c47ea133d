//! `checkpoint`: dumps a running container with CRIU (runc 1.1's flags; see
//! crust_runc::criu for what is described to CRIU and why the CLI). Without
//! `--leave-running` the container is gone afterwards (CRIU kills it; its state is
//! removed as `delete` does).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use crust_runc::criu;
use crust_runc::state::Status;
use oci_spec::runtime::LinuxNamespaceType;

/// Options of CRIU shared by checkpoint and restore (runc's names).
#[derive(clap::Args, Debug, Clone)]
pub struct CriuFlags {
    /// Allow open tcp connections.
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks, for safety.
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full, strict or ignore.
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace, but do not restore its properties (not supported).
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images (not supported).
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Use userfaultfd to lazily restore memory pages (not supported).
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

impl CriuFlags {
    /// CRIU's options; flags crust-runc does not implement are refused, never ignored.
    pub fn common(&self) -> Result<criu::Common> {
        if !self.empty_ns.is_empty() {
            bail!("--empty-ns is not supported by crust-runc");
        }
        if self.auto_dedup || self.lazy_pages {
            bail!("--auto-dedup and --lazy-pages are not supported by crust-runc");
        }
        let mode = match &self.manage_cgroups_mode {
            Some(m) => Some(criu::cgroups_mode(m).map_err(anyhow::Error::msg)?),
            None => None,
        };
        Ok(criu::Common {
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: mode,
        })
    }
}

/// `checkpoint` flags (runc 1.1).
#[derive(clap::Args, Debug)]
pub struct CheckpointArgs {
    /// Path for saving criu image files.
    #[arg(long = "image-path", default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// Path for saving work files and logs (default: the image path).
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Path for previous criu image files in pre-dump (not supported).
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing.
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump the container's memory information only (not supported).
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// ADDRESS:PORT of the page server (not supported).
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// Criu writes \0 to this FD once lazy-pages is ready (not supported).
    #[arg(long = "status-fd")]
    pub status_fd: Option<i32>,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Container id.
    pub id: String,
}

/// Makes `p` (mode 0700, parents as needed) and returns it absolute.
pub fn make_dir(p: &Path) -> Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .with_context(|| format!("create {p:?}"))?;
    std::fs::canonicalize(p).with_context(|| format!("resolve {p:?}"))
}

/// Runs `criu ARGS`; on failure the error carries the log's error lines. `stdio`: CRIU
/// gets this process's stdio (restore: the container's new stdio, inherited by the
/// restored processes); otherwise its output is captured for the error.
pub fn run_criu(binary: &str, args: &[String], log: &Path, stdio: bool) -> Result<()> {
    use std::process::{Command, Stdio};
    crust_runc::logging::debug(&format!("{binary} {}", args.join(" ")));
    let mut cmd = Command::new(binary);
    cmd.args(args);
    let out = if stdio {
        cmd.status().map(|status| std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: Vec::new(),
        })
    } else {
        cmd.stdin(Stdio::null()).output()
    }
    .with_context(|| format!("run {binary} (is CRIU installed?)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "criu {} failed ({}): {}{}",
            args.first().map(String::as_str).unwrap_or(""),
            out.status,
            criu::log_errors(log),
            if stderr.trim().is_empty() {
                String::new()
            } else {
                format!("; stderr: {}", stderr.trim())
            }
        );
    }
    Ok(())
}

/// Checkpoints the container.
pub fn run(root: &Path, a: &CheckpointArgs, criu_bin: &str) -> Result<i32> {
    if a.parent_path.is_some() || a.pre_dump || a.page_server.is_some() || a.status_fd.is_some() {
        bail!("--parent-path, --pre-dump, --page-server and --status-fd are not supported by crust-runc");
    }
    let common = a.criu.common()?;
    let st = super::load(root, &a.id)?;
    match st.status(root) {
        Status::Running => {}
        s => bail!("container {} is not running (status {})", a.id, s.as_str()),
    }
    let images = make_dir(&a.image_path)?;
    let work = make_dir(a.work_path.as_deref().unwrap_or(&images))?;
    // The init's stdio as the kernel names it: restore hands the new pipes in under these.
    let stdio: Vec<String> = (0..3)
        .map(|fd| criu::stdio_entry(st.init_pid, fd))
        .collect();
    let path = images.join(criu::DESCRIPTORS);
    std::fs::write(&path, serde_json::to_vec(&stdio)?)
        .with_context(|| format!("write {path:?}"))?;
    let net_inode = match criu::joined_ns(&st.config, LinuxNamespaceType::Network) {
        Some(p) => Some(
            std::fs::metadata(&p)
                .with_context(|| format!("network namespace {p:?}"))?
                .ino(),
        ),
        None => None,
    };
    let args = criu::dump_args(
        &st.config,
        st.init_pid,
        &st.rootfs,
        &images,
        &work,
        a.leave_running,
        net_inode,
        &stdio,
        &common,
    );
    run_criu(criu_bin, &args, &work.join("dump.log"), false)?;
    if !a.leave_running {
        // CRIU killed the processes after dumping them: the container is gone.
        super::delete::destroy(root, &st);
    }
    Ok(0)
}
