//! CreateContainer: validate, prepare the writable snapshot over the image, build and
//! write the OCI bundle and create the task in the pod's shim (launched at RunPodSandbox;
//! again here if it is gone). The record's durable commit overlaps the task's creation;
//! the answer waits for both, and a failure undoes everything. Image volumes are
//! resolved to their image's layers and hold the image against removal; CDI devices are
//! resolved in the spec directories and their edits applied to the spec.

use std::path::{Component, Path, PathBuf};

use crate::runtime::checkpoint::archive;
use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::oci::mounts::ImageVolume;
use crate::runtime::oci::user::UserFiles;
use crate::runtime::oci::{self, mounts, spec};
use crate::runtime::pod::init;
use crate::runtime::shim::{self, Shim};
use crate::runtime::types::{
    ContainerRecord, ContainerSpec, ContainerState, EventKind, IdMapping, NsMode, PodState,
    Seccomp, UserNamespace, RECORD_VERSION,
};
use crate::runtime::{new_id, now, Runtime};
use crate::snapshots::Snapshotter as _;

impl Runtime {
    /// Creates container `spec` in pod `pod_id`; returns its id.
    pub async fn create_container(&self, pod_id: &str, mut spec: ContainerSpec) -> Result<String> {
        let pod = self.pod(pod_id)?;
        if pod.state != PodState::Ready {
            return Err(RuntimeError::PodNotReady(pod.id));
        }
        if spec.name.is_empty() {
            return Err(RuntimeError::Invalid(
                "container config metadata.name is required".into(),
            ));
        }
        if spec.image.is_empty() {
            return Err(RuntimeError::Invalid(
                "container config image is required".into(),
            ));
        }
        let log_path = log_path(&pod.spec.log_directory, &spec.log_path)?;
        // A checkpoint archive as the image: the container is recreated from it.
        let restore = if archive::is_archive(&spec.image) {
            Some(self.restore_source(&mut spec).await?)
        } else {
            None
        };
        let sec = &spec.security;
        if let (Some(g), None, true) = (
            sec.run_as_group,
            sec.run_as_user,
            sec.run_as_username.is_empty(),
        ) {
            return Err(RuntimeError::Invalid(format!(
                "runAsGroup {g} is set without runAsUser or runAsUsername"
            )));
        }
        for m in &spec.mounts {
            mounts::check_mount(m)?;
        }
        oci::resources::check(&spec.resources)?;
        // Every container of a pod is in the pod's user namespace; one that names another
        // (kubelet sends the pod's) cannot be given it.
        if let Some(u) = &spec.security.namespaces.user {
            if pod.spec.namespaces.user.as_ref() != Some(u) {
                return Err(RuntimeError::Invalid(format!(
                    "userns_options of container {} differ from its pod's",
                    spec.name
                )));
            }
        }
        if let Seccomp::Localhost(p) = &spec.security.seccomp {
            if !Path::new(p).is_absolute() {
                return Err(RuntimeError::Invalid(format!(
                    "seccomp profile {p:?} is not an absolute path"
                )));
            }
            // Checked off the async workers (the file system may be slow); the spec reads
            // it again, as safely (non-blocking open, regular file, size cap).
            let path = p.clone();
            tokio::task::spawn_blocking(move || oci::seccomp::read_localhost(&path))
                .await
                .map_err(|e| RuntimeError::Blocking {
                    op: "read seccomp profile",
                    id: p.clone(),
                    message: e.to_string(),
                })?
                .map_err(RuntimeError::Invalid)?;
        }
        let _g = self.locks.lock(format!("pod/{}", pod.id)).await;
        if let Some(c) = self
            .pod_containers(&pod.id)
            .into_iter()
            .find(|c| c.spec.name == spec.name && c.spec.attempt == spec.attempt)
        {
            return Err(RuntimeError::ContainerExists {
                name: format!("{}_{}", spec.name, spec.attempt),
                existing: c.id,
            });
        }
        let image = self
            .images
            .get(&spec.image)
            .map_err(|source| RuntimeError::Image {
                image: spec.image.clone(),
                source: Box::new(source),
            })?;
        let pid_ns = match spec.security.namespaces.pid {
            NsMode::Pod if pod.pidns.is_some() => {
                let pin = pod.pidns.clone().unwrap_or_default();
                if !init::alive(&pin, pod.pod_init_pid) {
                    tracing::warn!(pod = %pod.id, "the init of the pod's PID namespace is gone");
                    return Err(RuntimeError::PodNotReady(pod.id));
                }
                Some(pin)
            }
            // Pods recorded before the pod init existed: the first running container's.
            NsMode::Pod => self
                .pod_containers(&pod.id)
                .into_iter()
                .find(|c| {
                    c.state == ContainerState::Running
                        && c.pid > 0
                        && c.spec.security.namespaces.pid == NsMode::Pod
                })
                .map(|c| PathBuf::from(format!("/proc/{}/ns/pid", c.pid))),
            NsMode::Target => {
                let t = self.container(&spec.security.namespaces.target_id)?;
                if t.state != ContainerState::Running || t.pid == 0 {
                    return Err(RuntimeError::Invalid(format!(
                        "target container {} is not running",
                        t.id
                    )));
                }
                Some(PathBuf::from(format!("/proc/{}/ns/pid", t.pid)))
            }
            _ => None,
        };
        // Start-up's leftover removal must not take this container's snapshot or bundle
        // (made before its record) for a crash's leftovers.
        self.host_recovered().await;
        let t0 = std::time::Instant::now();
        let id = new_id();
        // Image volumes: the images must be here (kubelet pulls them first); each is held
        // against RemoveImage from here on, released if the create fails.
        let mut volumes = Vec::new();
        let mut volume_ids = Vec::new();
        for m in spec.mounts.iter().filter(|m| !m.image.is_empty()) {
            let held = self.images.hold_volume(&m.image, &id).await;
            let (img, layers) = match held {
                Ok(v) => v,
                Err(source) => {
                    self.images.release_volumes(&id);
                    return Err(RuntimeError::Image {
                        image: m.image.clone(),
                        source: Box::new(source),
                    });
                }
            };
            volumes.push(ImageVolume {
                container_path: m.container_path.clone(),
                layers,
            });
            if !volume_ids.contains(&img.record.id) {
                volume_ids.push(img.record.id.clone());
            }
        }
        let key = format!("ctr-{id}");
        // A metadata commit and directory creation: on a blocking thread.
        let prepared = {
            let (images, key, image_id) =
                (self.images.clone(), key.clone(), image.id().to_string());
            tokio::task::spawn_blocking(move || images.prepare_rootfs(&key, &image_id))
                .await
                .map_err(|e| RuntimeError::Blocking {
                    op: "prepare snapshot",
                    id: id.clone(),
                    message: e.to_string(),
                })
                .and_then(|r| {
                    r.map_err(|source| RuntimeError::Image {
                        image: spec.image.clone(),
                        source: Box::new(source),
                    })
                })
        };
        let mounts = match prepared {
            Ok(m) => m,
            Err(e) => {
                self.images.release_volumes(&id);
                return Err(e);
            }
        };
        let mounts = match &pod.spec.namespaces.user {
            Some(u) => match idmap_rootfs(mounts, u) {
                Ok(m) => m,
                Err(e) => {
                    self.images.release_volumes(&id);
                    let snapshots = self.images.snapshotter();
                    let _ = tokio::task::spawn_blocking(move || snapshots.remove(&key)).await;
                    return Err(e);
                }
            },
            None => mounts,
        };
        let bundle = self.cfg.state.join("bundles").join(&id);
        let cg = crate::runtime::cgroup::child(pod.cgroup_driver, &pod.cgroup_parent, &id);
        let systemd_cgroup = cg.unit.is_some();
        let cgroup_path = cg.dir.clone();
        let image_ref = image
            .repo_digests
            .first()
            .cloned()
            .unwrap_or_else(|| image.id().to_string());
        let mut rec = ContainerRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            pod_id: pod.id.clone(),
            image_id: image.id().into(),
            image_ref,
            state: ContainerState::Created,
            created_at: now(),
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            pid: 0,
            snapshot: key.clone(),
            bundle: bundle.clone(),
            log_path: log_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            stop_signal: image.record.config.stop_signal.clone(),
            cgroup_path: cgroup_path.clone(),
            oom_reported: false,
            mounts: spec.mounts.clone(),
            user: None,
            image_volumes: volume_ids,
            spec,
        };

        let layers = layer_dirs(&mounts);
        let upper = mounts
            .iter()
            .find_map(|m| m.option("upperdir").map(PathBuf::from));
        let restore_images = restore.as_ref().map(|_| bundle.join("checkpoint"));
        let t_snapshot = t0.elapsed();
        // Cumulative phase times: bundle written, record durable, shim reached, task created.
        let mut t = [std::time::Duration::ZERO; 4];
        let r = async {
            // Read through the image's layers, off the async workers (a slow disk or a
            // hostile image must not stall other calls).
            let user_files = tokio::task::spawn_blocking(move || UserFiles::read(&layers))
                .await
                .map_err(|e| RuntimeError::Io {
                    op: "read /etc/passwd and /etc/group of",
                    path: bundle.clone(),
                    source: std::io::Error::other(e),
                })??;
            let mut oci = spec::build(&spec::SpecInput {
                id: &id,
                pod: &pod,
                spec: &rec.spec,
                image: &image.record.config,
                image_name: image
                    .repo_tags
                    .first()
                    .map(String::as_str)
                    .unwrap_or(&rec.spec.image),
                user_files: &user_files,
                cgroup_path: &cg.spec,
                pid_ns,
                min_oom_score_adj: self.min_oom,
                volumes: &volumes,
                unified_cgroups: crust_cgroups::unified(),
            })?;
            let cdi = crate::cdi::requested(&rec.spec.cdi_devices, &rec.spec.annotations);
            if !cdi.is_empty() {
                let dirs = self.cfg.cdi_spec_dirs.clone();
                let reg = tokio::task::spawn_blocking(move || crate::cdi::Registry::load(&dirs))
                    .await
                    .map_err(|e| RuntimeError::Blocking {
                        op: "read CDI specs",
                        id: id.clone(),
                        message: e.to_string(),
                    })?;
                crate::cdi::inject(&mut oci, &reg, &cdi)?;
            }
            rec.user = spec::process_user(&oci);
            // Private, as every directory crustd makes in its state (`bundles` itself is
            // traversable); traversable (not listable) for the root of a pod's user
            // namespace, which reaches `rootfs` through it.
            let mode = if pod.spec.namespaces.user.is_some() {
                crate::perms::TOP
            } else {
                crate::perms::PRIVATE_DIR
            };
            crate::perms::dir(&bundle, mode).map_err(io("create", &bundle))?;
            std::fs::create_dir_all(bundle.join("rootfs")).map_err(io("create", &bundle))?;
            let cfg = bundle.join("config.json");
            let bytes = serde_json::to_vec(&oci)
                .map_err(|e| RuntimeError::Invalid(format!("spec encoding: {e}")))?;
            crate::perms::write_private(&cfg, &bytes).map_err(io("write", &cfg))?;
            if rec.spec.stdin {
                let fifo = bundle.join("stdin");
                nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| RuntimeError::Io {
                        op: "mkfifo",
                        path: fifo.clone(),
                        source: e.into(),
                    })?;
            }
            if let Some(l) = &log_path {
                if let Some(d) = l.parent() {
                    std::fs::create_dir_all(d).map_err(io("create", d))?;
                }
            }
            if let (Some(src), Some(images)) = (&restore, &restore_images) {
                // CRIU images into the bundle, the rootfs changes into the new upper dir,
                // the log so far to the new log path: off the async workers.
                let (src, images, upper, log) =
                    (src.clone(), images.clone(), upper.clone(), log_path.clone());
                tokio::task::spawn_blocking(move || {
                    archive::unpack(&src, &images, upper.as_deref(), log.as_deref())
                        .map_err(io("unpack checkpoint archive", &src))
                })
                .await
                .map_err(|e| RuntimeError::Blocking {
                    op: "unpack checkpoint archive",
                    id: id.clone(),
                    message: e.to_string(),
                })??;
            }
            t[0] = t0.elapsed();
            // The record's durable commit (an fsync on the metadata writer's thread) and the
            // task's creation in the shim overlap (issue 20); the answer waits for both.
            // A crash between the task's creation and the record's commit leaves a task
            // and a bundle no record names: recovery deletes the task through the pod's
            // shim and removes the bundle (`recover.rs`, `remove_leftovers`).
            let save = async {
                let r = self.save_container(&rec).await;
                (r, t0.elapsed())
            };
            let task = async {
                let client = self.pod_shim(&pod.id).await?;
                let reached = t0.elapsed();
                // Without a CRI log the shim still copies the output, for Attach.
                let stdout = log_path
                    .as_ref()
                    .map(|p| format!("crilog://{}", p.display()))
                    .unwrap_or_else(|| "discard://".into());
                client
                    .create(
                        &id,
                        &bundle,
                        &mounts,
                        &stdout,
                        rec.spec.stdin,
                        rec.spec.tty,
                        systemd_cgroup,
                        restore_images.as_deref(),
                    )
                    .await?;
                Ok::<_, RuntimeError>((client, reached, t0.elapsed()))
            };
            let ((saved, t_saved), created) = tokio::join!(save, task);
            t[1] = t_saved;
            if let Ok((_, reached, done)) = &created {
                (t[2], t[3]) = (*reached, *done);
            }
            match (saved, created) {
                (Ok(()), Ok(_)) => Ok(()),
                (Err(e), Ok((client, ..))) => {
                    // Created but not recorded: nothing may run that no record names.
                    if let Err(d) = client.delete(&id, "").await {
                        tracing::warn!(container = %id, error = %d, "delete the unrecorded task");
                    }
                    Err(e)
                }
                (_, Err(e)) => Err(e),
            }
        }
        .await;
        if let Err(e) = r {
            self.images.release_volumes(&id);
            let _ = self.forget_container(&id).await;
            let _ = std::fs::remove_dir_all(&bundle);
            let snapshots = self.images.snapshotter();
            let _ = tokio::task::spawn_blocking(move || snapshots.remove(&key)).await;
            return Err(e);
        }
        self.emit(&id, &pod.id, EventKind::Created);
        tracing::debug!(container = %id, snapshot = ?t_snapshot, bundle = ?t[0], record = ?t[1], shim = ?t[2], task = ?t[3], "create phases (cumulative)");
        tracing::info!(container = %id, pod = %pod.id, name = %rec.spec.name, "container created");
        Ok(id)
    }

    /// For a CreateContainer whose image is checkpoint archive `spec.image`: reads its
    /// metadata, notes the restore in the annotations (as containerd: `restored`,
    /// `checkpointedAt`, `checkpointImage`) and points `spec.image` at the archive's base
    /// image, which must be present (kubelet pulls images; the archive names it).
    /// Returns the archive's path.
    async fn restore_source(&self, spec: &mut ContainerSpec) -> Result<PathBuf> {
        let path = PathBuf::from(&spec.image);
        let p = path.clone();
        let (config, _) = tokio::task::spawn_blocking(move || archive::read_meta(&p))
            .await
            .map_err(|e| RuntimeError::Blocking {
                op: "read checkpoint archive",
                id: spec.name.clone(),
                message: e.to_string(),
            })?
            .map_err(|e| RuntimeError::Invalid(format!("image {}: {e}", path.display())))?;
        let candidates = [
            &config.rootfs_image_name,
            &config.rootfs_image,
            &config.rootfs_image_ref,
        ];
        let Some(base) = candidates
            .iter()
            .find(|c| !c.is_empty() && self.images.get(c).is_ok())
        else {
            let name = candidates
                .iter()
                .find(|c| !c.is_empty())
                .map(|c| c.to_string())
                .unwrap_or_default();
            return Err(RuntimeError::Image {
                image: name.clone(),
                source: Box::new(crate::images::Error::NotFound(format!(
                    "{name} (the base image of checkpoint {}): pull it first",
                    path.display()
                ))),
            });
        };
        spec.annotations.insert("restored".into(), "true".into());
        spec.annotations
            .insert("checkpointedAt".into(), config.checkpointed_at.clone());
        spec.annotations
            .insert("checkpointImage".into(), path.display().to_string());
        spec.image = base.to_string();
        tracing::info!(archive = %path.display(), from = %config.id, image = %spec.image, "creating a container from a checkpoint");
        Ok(path)
    }

    /// The pod's shim, launched again if it is gone (it exits by itself when its last
    /// container is deleted, and may have died).
    async fn pod_shim(&self, pod_id: &str) -> Result<Shim> {
        if let Some(s) = self.shim(pod_id).await.ok().flatten() {
            if s.ping(pod_id).await.is_ok() {
                return Ok(s);
            }
            tracing::info!(pod = %pod_id, "the pod's shim is gone: launching a new one");
        }
        self.drop_shim(pod_id).await;
        let address = shim::launch(&self.cfg.shim, pod_id)?;
        let mut pod = self.pod(pod_id)?;
        if pod.shim_address.as_deref() != Some(address.as_str()) {
            pod.shim_address = Some(address.clone());
            self.save_pod(&pod).await?;
        }
        self.fresh_shim(pod_id, &address).await
    }

    /// A connection to the shim at `address`, replacing a cached one that is stale.
    pub(in crate::runtime) async fn fresh_shim(&self, pod_id: &str, address: &str) -> Result<Shim> {
        let mut shims = self.shims.lock().await;
        if let Some(s) = shims.get(pod_id) {
            if s.ping(pod_id).await.is_ok() {
                return Ok(s.clone());
            }
        }
        let s = Shim::connect(address, pod_id).await?;
        self.cache_shim(&mut shims, pod_id, s.clone());
        Ok(s)
    }
}

/// The full log path: `log_path` must be relative and stay inside `dir`.
fn log_path(dir: &str, rel: &str) -> Result<Option<PathBuf>> {
    if rel.is_empty() {
        return Ok(None);
    }
    if dir.is_empty() {
        return Err(RuntimeError::Invalid(format!(
            "log path {rel:?} given but the pod sandbox has no log directory"
        )));
    }
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(RuntimeError::Invalid(format!(
            "log path {rel:?} must be relative and stay inside the pod's log directory"
        )));
    }
    Ok(Some(Path::new(dir).join(p)))
}

/// The rootfs of a container in the pod's user namespace `u`: the image layers are shown
/// idmapped (containerd's `uidmap=`/`gidmap=` overlay options, applied by the shim) so
/// that root's files are the namespace root's, and the container's own upper directory
/// (fresh, empty: no image layer is chowned) is given to the namespace's root, so what
/// the container writes is stored with its host ids.
fn idmap_rootfs(
    mut mounts: Vec<crate::snapshots::Mount>,
    u: &UserNamespace,
) -> Result<Vec<crate::snapshots::Mount>> {
    let map = |m: &IdMapping| format!("{}:{}:{}", m.container_id, m.host_id, m.size);
    let owner = (
        Some(nix::unistd::Uid::from_raw(u.uid.host_id)),
        Some(nix::unistd::Gid::from_raw(u.gid.host_id)),
    );
    for m in &mut mounts {
        let top = match m.kind.as_str() {
            "overlay" => m.option("upperdir").map(PathBuf::from),
            _ => Some(PathBuf::from(&m.source)),
        };
        if let Some(top) = top {
            nix::unistd::chown(&top, owner.0, owner.1).map_err(|e| RuntimeError::Io {
                op: "chown the container's upper dir",
                path: top.clone(),
                source: e.into(),
            })?;
        }
        if m.kind == "overlay" && m.option("lowerdir").is_some() {
            m.options.push(format!("uidmap={}", map(&u.uid)));
            m.options.push(format!("gidmap={}", map(&u.gid)));
        }
    }
    Ok(mounts)
}

/// Layer directories of a snapshot's mounts, top first.
fn layer_dirs(mounts: &[crate::snapshots::Mount]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for m in mounts {
        if let Some(u) = m.option("upperdir") {
            out.push(PathBuf::from(u));
        }
        if let Some(l) = m.option("lowerdir") {
            out.extend(l.split(':').map(PathBuf::from));
        }
        if m.kind == "bind" {
            out.push(PathBuf::from(&m.source));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths() {
        assert_eq!(log_path("/l", "").unwrap(), None);
        assert_eq!(
            log_path("/l", "c/0.log").unwrap(),
            Some(PathBuf::from("/l/c/0.log"))
        );
        assert!(log_path("/l", "/etc/x").is_err());
        assert!(log_path("/l", "../x").is_err());
        assert!(log_path("/l", "a/../../x").is_err());
        assert!(log_path("", "x").is_err());
    }
}
