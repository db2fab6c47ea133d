//! CheckpointContainer and restore from a checkpoint archive (KEP-2008, as containerd 2.1
//! and CRI-O): the pod's shim dumps the running container with CRIU through crust-runc
//! (it keeps running), crustd packs the images with the container's metadata, rootfs
//! changes and log into the archive kubelet names ([`archive`]). CreateContainer whose
//! image is such an archive recreates the container on the archive's base image with its
//! rootfs changes and log; its StartContainer restores the processes (the shim's Start
//! runs `crust-runc restore`).
//!
//! CRIU must work on this node: `criu check` is run (once per daemon while it passes)
//! before each checkpoint; a node where it fails (no criu, or a kernel criu does not
//! support, e.g. Debian 12's criu 3.17 on kernels >= 6.13, criu issue #2532) gets
//! Unimplemented naming why, and nothing is changed.

pub mod archive;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::types::{ContainerState, NsMode};
use crate::runtime::{now, Runtime};
use crate::snapshots::Snapshotter as _;

/// Used when the request's timeout is 0.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on `criu check`.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// `criu check` passed once (it is not run again; a failure is, as criu may be installed
/// or fixed later).
static CRIU_OK: AtomicBool = AtomicBool::new(false);

/// RFC 3339 (UTC, nanoseconds) of unix nanoseconds `ns`.
fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Whether CRIU can checkpoint on this node: Ok, or why not.
pub async fn criu_ready() -> Result<()> {
    if CRIU_OK.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut cmd = tokio::process::Command::new("criu");
    cmd.arg("check").kill_on_drop(true);
    cmd.stdin(std::process::Stdio::null());
    let out = match tokio::time::timeout(CHECK_TIMEOUT, cmd.output()).await {
        Err(_) => {
            return Err(RuntimeError::NoCriu(format!(
                "`criu check` did not finish within {}s",
                CHECK_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(e)) => {
            return Err(RuntimeError::NoCriu(format!(
                "criu cannot be run ({e}); install CRIU (Debian: the criu package)"
            )))
        }
        Ok(Ok(o)) => o,
    };
    if out.status.success() {
        CRIU_OK.store(true, Ordering::Relaxed);
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let why: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let why = why[why.len().saturating_sub(3)..].join("; ");
    Err(RuntimeError::NoCriu(format!(
        "`criu check` fails on this node's kernel {}: {why}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    )))
}

impl Runtime {
    /// Checkpoints running container `id` into the archive `location` within `timeout`
    /// (0: [`DEFAULT_TIMEOUT`]); the container keeps running.
    pub async fn checkpoint_container(
        &self,
        id: &str,
        location: &str,
        timeout_s: i64,
    ) -> Result<()> {
        let rec = self.container(id)?;
        let dest = PathBuf::from(location);
        if !dest.is_absolute() || dest.file_name().is_none() {
            return Err(RuntimeError::Invalid(format!(
                "checkpoint location {location:?} must be an absolute file path"
            )));
        }
        if !dest.parent().is_some_and(Path::is_dir) {
            return Err(RuntimeError::Invalid(format!(
                "the directory of checkpoint location {location:?} does not exist"
            )));
        }
        if rec.state != ContainerState::Running {
            return Err(RuntimeError::WrongState {
                what: "container",
                id: rec.id,
                state: format!("{:?}", rec.state).to_lowercase(),
                op: "checkpoint (only running containers can be)",
            });
        }
        if rec.spec.tty {
            return Err(RuntimeError::Unsupported(
                "checkpoint of a container with a terminal (tty)".into(),
            ));
        }
        if rec.spec.security.namespaces.pid != NsMode::Container {
            // CRIU dumps a PID namespace only together with its init (pid 1).
            return Err(RuntimeError::Unsupported(format!(
                "checkpoint of a container in a shared PID namespace ({:?} mode; CRIU needs \
                 the container's own)",
                rec.spec.security.namespaces.pid
            )));
        }
        let timeout = match timeout_s {
            t if t > 0 => Duration::from_secs(t as u64),
            _ => DEFAULT_TIMEOUT,
        };
        let work = self
            .cfg
            .state
            .join("checkpoints")
            .join(format!("{}-{}", rec.id, now()));
        let r = tokio::time::timeout(timeout, self.checkpoint_into(&rec.id, &dest, &work)).await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        match r {
            Ok(r) => r,
            Err(_) => Err(RuntimeError::Timeout {
                op: "checkpoint",
                id: rec.id,
                secs: timeout.as_secs(),
            }),
        }
    }

    async fn checkpoint_into(&self, id: &str, dest: &Path, work: &Path) -> Result<()> {
        criu_ready().await?;
        let _g = self.locks.lock(format!("ctr/{id}")).await;
        let rec = self.container(id)?;
        if rec.state != ContainerState::Running {
            return Err(RuntimeError::WrongState {
                what: "container",
                id: rec.id,
                state: format!("{:?}", rec.state).to_lowercase(),
                op: "checkpoint",
            });
        }
        let pod = self.pod(&rec.pod_id)?;
        let shim = self
            .shim(&pod.id)
            .await?
            .ok_or_else(|| RuntimeError::PodNotReady(pod.id.clone()))?;
        let images = work.join(archive::CHECKPOINT_DIR);
        crate::perms::dir(work, crate::perms::PRIVATE_DIR)
            .map_err(crate::runtime::error::io("create", work))?;
        let t0 = std::time::Instant::now();
        shim.checkpoint(&rec.id, &images, work).await?;
        let dumped = t0.elapsed();
        let upper = self
            .images
            .snapshotter()
            .mounts(&rec.snapshot)
            .ok()
            .and_then(|m| {
                m.iter()
                    .find_map(|m| m.option("upperdir").map(PathBuf::from))
            });
        let image = self.images.get(&rec.image_id).ok();
        let config = archive::ConfigDump {
            id: rec.id.clone(),
            name: rec.spec.name.clone(),
            rootfs_image: rec.spec.image.clone(),
            rootfs_image_ref: rec.image_ref.clone(),
            rootfs_image_name: image
                .as_ref()
                .and_then(|i| i.repo_tags.first().cloned())
                .unwrap_or_else(|| rec.spec.image.clone()),
            oci_runtime: "crust-runc".into(),
            created_time: rfc3339(rec.created_at),
            checkpointed_at: rfc3339(now()),
        };
        let (dest2, work2, spec) = (
            dest.to_path_buf(),
            work.to_path_buf(),
            rec.bundle.join("config.json"),
        );
        let log = (!rec.log_path.is_empty()).then(|| PathBuf::from(&rec.log_path));
        tokio::task::spawn_blocking(move || {
            archive::write(
                &dest2,
                &archive::Contents {
                    config: &config,
                    spec: &spec,
                    upper: upper.as_deref(),
                    log: log.as_deref(),
                    work: &work2,
                },
            )
        })
        .await
        .map_err(|e| RuntimeError::Blocking {
            op: "write checkpoint archive",
            id: id.into(),
            message: e.to_string(),
        })?
        .map_err(crate::runtime::error::io("write checkpoint archive", dest))?;
        tracing::info!(container = %id, archive = %dest.display(), dump = ?dumped, total = ?t0.elapsed(), "container checkpointed");
        Ok(())
    }
}
