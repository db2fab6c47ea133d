//! Recovery at start-up, in two steps.
//!
//! [`Runtime::recover`], before the socket serves: what an answer depends on. Reconnect to
//! the shims of the recorded pods, bring every container's state up to date (exits that
//! happened while crustd was down are recorded with the shim's exit code and time),
//! restart the exit watchers, mark pods whose namespaces are gone not ready.
//!
//! [`Runtime::recover_host`], while the socket already serves: the host work no answer
//! needs. Finish or undo what a crash interrupted (a pod's half-done network teardown),
//! reconcile the networks with the live pods, shut down orphan shims and remove leftovers
//! no record owns (bundles, writable snapshots, pod dirs, namespace pins, cgroups).
//! Invariant: until it is done, the calls that make what it removes (RunPodSandbox,
//! CreateContainer) wait for it ([`Runtime::host_recovered`]), so it never sees a
//! half-made pod or container of this crustd as a leftover; reads and the other calls are
//! answered at once.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::api::Status;

use super::error::Result;
use super::pod::{files, init};
use super::shim::{self, Exit, Shim};
use super::types::{ContainerState, PodState};
use super::{now, Runtime};
use crate::network::netns;
use crate::snapshots::Snapshotter as _;

impl Runtime {
    /// Brings the records up to date with the shims; call once after [`Runtime::open`],
    /// before serving, then spawn [`Runtime::recover_host`].
    pub async fn recover(self: &Arc<Self>) -> Result<()> {
        let t0 = std::time::Instant::now();
        for p in self.pods() {
            if p.state == PodState::Ready {
                let pinned = p.netns.as_ref().is_none_or(|n| netns::is_pinned(n));
                let init = p
                    .pidns
                    .as_ref()
                    .is_none_or(|pin| init::alive(pin, p.pod_init_pid));
                if !pinned || !init {
                    tracing::warn!(pod = %p.id, "pod namespaces are gone: marking it not ready");
                    let mut q = p.clone();
                    q.state = PodState::NotReady;
                    self.save_pod(&q).await?;
                }
            }
        }
        // Image volumes hold their images against removal again, whatever the state.
        for c in self.containers() {
            for v in &c.image_volumes {
                self.images.rehold_volume(v, &c.id);
            }
        }
        let mut recovered = 0;
        for c in self.containers() {
            if !matches!(c.state, ContainerState::Running | ContainerState::Created) {
                continue;
            }
            let shim = match self.shim(&c.pod_id).await {
                Ok(Some(s)) => match s.ping(&c.pod_id).await {
                    Ok(_) => Some(s),
                    Err(e) => {
                        tracing::warn!(pod = %c.pod_id, error = %e, "shim does not answer");
                        None
                    }
                },
                Ok(None) => {
                    tracing::warn!(pod = %c.pod_id, "pod has no shim address");
                    None
                }
                Err(e) => {
                    tracing::warn!(pod = %c.pod_id, error = %e, "shim unreachable");
                    None
                }
            };
            let Some(shim) = shim else {
                self.drop_shim(&c.pod_id).await;
                // Its processes may have outlived it: killed and cleaned through the runtime.
                self.reap_orphan_task(&c).await?;
                continue;
            };
            match shim.state(&c.id).await {
                Ok(st) => match st.status.enum_value_or_default() {
                    Status::STOPPED => {
                        let at = st
                            .exited_at
                            .as_ref()
                            .map(|t| t.seconds * 1_000_000_000 + t.nanos as i64)
                            .unwrap_or_else(now);
                        self.record_exit(
                            &c.id,
                            Exit {
                                status: st.exit_status,
                                at,
                            },
                        )
                        .await?;
                    }
                    Status::CREATED if c.state == ContainerState::Created => {}
                    _ => {
                        if c.state == ContainerState::Created {
                            // Crashed between the shim's Start and our record.
                            self.update_container(&c.id, |r| {
                                r.state = ContainerState::Running;
                                r.pid = st.pid;
                                r.started_at = now();
                            })
                            .await?;
                        }
                        self.watch_exit(shim, c.id.clone());
                    }
                },
                Err(e) => {
                    tracing::warn!(container = %c.id, error = %e, "task lost");
                    if c.state == ContainerState::Created {
                        // Crashed in CreateContainer before the task existed: undo.
                        self.remove_container(&c.id).await?;
                    } else {
                        self.record_exit(
                            &c.id,
                            Exit {
                                status: 255,
                                at: now(),
                            },
                        )
                        .await?;
                    }
                }
            }
            recovered += 1;
        }
        // FIFO directories of exec and attach sessions: the shim has its ends once a session
        // started, and no session outlives the crustd that opened it, so every entry is a
        // leftover of a crash between mkfifo and the shim opening them. Removed here, not
        // in recover_host: an exec served meanwhile makes new ones.
        for d in ["exec", "attach"] {
            for e in std::fs::read_dir(self.cfg.state.join(d))
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_dir_all(e.path());
                tracing::info!(path = %e.path().display(), "removed leftover session FIFOs");
            }
        }
        tracing::info!(
            pods = self.pods().len(),
            containers = self.containers().len(),
            recovered,
            took = ?t0.elapsed(),
            "runtime state recovered"
        );
        Ok(())
    }

    /// The host half of recovery (see the module doc), run while the socket serves; opens
    /// [`Runtime::host_recovered`] when done, also if it fails or panics.
    pub async fn recover_host(self: &Arc<Self>) {
        struct Open<'a>(&'a tokio::sync::watch::Sender<bool>);
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                self.0.send_replace(true);
            }
        }
        let _open = Open(&self.host_done);
        let t0 = std::time::Instant::now();
        for p in self.pods() {
            if p.state != PodState::Ready
                && p.netns
                    .as_ref()
                    .is_some_and(|n| self.pod_containers(&p.id).is_empty() || netns::is_pinned(n))
            {
                // Crashed in RunPodSandbox or StopPodSandbox (the netns pin goes last in a
                // teardown): finish the teardown.
                self.teardown_pod(&p).await;
            }
        }
        // Network first: CNI DEL of a pod that has no record yet (a crash inside
        // RunPodSandbox) still finds its pinned netns, which remove_leftovers then unmounts.
        if let Some(net) = &self.network {
            let live: HashSet<String> = self
                .pods()
                .into_iter()
                .filter(|p| p.netns.is_some() && p.state == PodState::Ready)
                .map(|p| p.id)
                .collect();
            if let Err(e) = net.reconcile(&live).await {
                tracing::warn!(error = %e, "network reconcile");
            }
        }
        // Shims first: an orphan shim's containers are killed and deleted through it (which
        // unmounts their rootfs), then remove_leftovers removes their bundles and snapshots.
        self.reap_shims().await;
        self.remove_leftovers().await;
        tracing::info!(took = ?t0.elapsed(), "host recovered (networks, orphan shims, leftovers)");
    }

    /// Returns once [`Runtime::recover_host`] is done: RunPodSandbox and CreateContainer
    /// wait here so that it never takes what they are making for a leftover.
    pub(in crate::runtime) async fn host_recovered(&self) {
        let mut rx = self.host_done.subscribe();
        // An error means the sender is gone, which happens only with the runtime itself.
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Shuts down the shims no pod needs: those of pods that are gone (a crash inside
    /// RunPodSandbox or RemovePodSandbox) and of stopped pods without containers. The
    /// containers a gone pod's shim still runs are killed and deleted through it first
    /// (nothing records them); a shim still alive after Shutdown is SIGKILLed.
    async fn reap_shims(&self) {
        let mut keep = HashSet::new();
        for p in self.pods() {
            let needed = p.state == PodState::Ready || !self.pod_containers(&p.id).is_empty();
            if !needed {
                continue;
            }
            keep.insert(shim::address_for(&self.cfg.shim, &p.id));
            if let Some(a) = p.shim_address {
                keep.insert(a);
            }
        }
        let Ok(rd) = std::fs::read_dir(self.cfg.shim.state_dir.join("s")) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "sock") {
                continue;
            }
            let address = format!("unix://{}", path.display());
            if keep.contains(&address) {
                continue;
            }
            let Ok(s) = Shim::connect(&address, "orphan").await else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let Ok(pid) = s.ping("orphan").await else {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("log"));
                continue;
            };
            let killed = self.kill_orphan_containers(&s, &address).await;
            s.shutdown().await;
            if !wait_path_gone(&path, Duration::from_secs(2)).await && pid > 1 {
                tracing::warn!(shim = %address, pid, "shim of a gone pod did not exit: killing it");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("log"));
            }
            tracing::info!(shim = %address, containers = killed, "stopped a shim no pod needs");
        }
    }

    /// Kills (SIGKILL, every process), waits for and deletes each container the orphan
    /// shim `s` runs; returns how many. The Task API has no listing, so the candidates
    /// are the containers the runtime has state for and those with a bundle: a shim
    /// answers State only for its own containers.
    async fn kill_orphan_containers(&self, s: &Shim, address: &str) -> usize {
        let mut ids = std::collections::BTreeSet::new();
        for dir in [
            crust_shim_contract::runtime_state_root(&self.cfg.shim.runtime_root, shim::NAMESPACE),
            self.cfg.state.join("bundles"),
        ] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                ids.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
        let mut n = 0;
        for id in ids {
            if kill_and_delete(s, &id, address, "a gone pod").await {
                n += 1;
            }
        }
        n
    }

    /// A leftover bundle's task, if the pod's shim still has one: a crash inside
    /// CreateContainer after the shim created the task and before the record's commit
    /// (the two overlap) leaves a task no record names in a pod that lives on. Killed and
    /// deleted through that shim (which unmounts its rootfs). The pod is the bundle's
    /// `io.kubernetes.cri.sandbox-id` annotation.
    async fn delete_unrecorded_task(&self, bundle: &Path, id: &str) {
        let Some(pod) = bundle_sandbox_id(bundle) else {
            return;
        };
        let Ok(Some(s)) = self.shim(&pod).await else {
            return;
        };
        let address = format!("pod {pod}");
        kill_and_delete(&s, id, &address, "no record").await;
    }

    async fn remove_leftovers(&self) {
        let ctrs: HashSet<String> = self.containers().into_iter().map(|c| c.id).collect();
        let pods: HashSet<String> = self.pods().into_iter().map(|p| p.id).collect();
        if let Ok(rd) = std::fs::read_dir(self.cfg.state.join("bundles")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !ctrs.contains(&id) {
                    self.delete_unrecorded_task(&e.path(), &id).await;
                    let _ = nix::mount::umount2(
                        &e.path().join("rootfs"),
                        nix::mount::MntFlags::MNT_DETACH,
                    );
                    let _ = std::fs::remove_dir_all(e.path());
                    tracing::info!(container = %id, "removed leftover bundle");
                }
            }
        }
        let snaps = self.images.snapshotter();
        if let Ok(list) = snaps.list() {
            for s in list {
                if let Some(id) = s.key.strip_prefix("ctr-") {
                    if !ctrs.contains(id) {
                        let _ = snaps.remove(&s.key);
                        tracing::info!(snapshot = %s.key, "removed leftover snapshot");
                    }
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.cfg.state.join("pods")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !pods.contains(&id) {
                    files::remove_dir(&e.path());
                }
            }
        }
        // Pod cgroups (with their pod init's and containers' below) of pods without a record
        // that this crustd started (their namespace pins or pod dir are in its state dir): a
        // crash inside RunPodSandbox. Only those: another crustd may share the cgroup root.
        let mut ours: HashSet<String> = HashSet::new();
        let (state, recorded) = (self.cfg.state.clone(), pods.clone());
        if let Ok(stray) =
            tokio::task::spawn_blocking(move || init::kill_unrecorded(&state, &recorded)).await
        {
            ours.extend(stray);
        }
        for d in ["ns", "pods"] {
            for e in std::fs::read_dir(self.cfg.state.join(d))
                .into_iter()
                .flatten()
                .flatten()
            {
                let id = e.file_name().to_string_lossy().into_owned();
                if !pods.contains(&id) {
                    ours.insert(id);
                }
            }
        }
        let root = self.cfg.cgroup_root.clone();
        let _ = tokio::task::spawn_blocking(move || remove_leftover_cgroups(&root, &ours)).await;
        if let Ok(rd) = std::fs::read_dir(self.cfg.state.join("ns")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !pods.contains(&id) {
                    init::stop_pinned(&init::pin_path(&self.cfg.state, &id));
                    files::unpin(&self.cfg.state, &id);
                    let _ = netns::remove(&netns::pin_path(&self.cfg.state, &id));
                }
            }
        }
    }
}

/// Kills what runs in, and removes, each cgroup `<root>/<pod>` of a pod in `gone` (pods
/// of this crustd that have no record), on every hierarchy.
fn remove_leftover_cgroups(root: &str, gone: &HashSet<String>) {
    let rel = root.trim_matches('/');
    if rel.is_empty() {
        return;
    }
    let mut leftovers = std::collections::BTreeSet::new();
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        for e in std::fs::read_dir(h.path().join(rel))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let pod_like = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if pod_like && gone.contains(&name) && e.path().is_dir() {
                leftovers.insert(name);
            }
        }
    }
    for pod in leftovers {
        let path = format!("/{rel}/{pod}");
        let Ok(cg) = crust_cgroups::Cgroup::new(Some(&path), &pod) else {
            continue;
        };
        let pids = cg.pids().unwrap_or_default();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // A killed process leaves its cgroup only once it has exited: removing it before
        // (rmdir's EBUSY retries last half a second) left the cgroup behind on a busy host.
        for pid in pids {
            init::wait_exited(pid);
        }
        match cg.delete() {
            Ok(()) => tracing::info!(cgroup = %path, "removed the cgroup of a gone pod"),
            Err(e) => {
                tracing::warn!(cgroup = %path, error = %e, "removing the cgroup of a gone pod")
            }
        }
    }
}

/// Kills (SIGKILL, every process), waits for and deletes task `id` of shim `s` if the shim
/// has it; whether it was deleted. `why` says in the log why it has to go.
async fn kill_and_delete(s: &Shim, id: &str, address: &str, why: &str) -> bool {
    let Ok(st) = s.state(id).await else {
        return false;
    };
    tracing::warn!(shim = %address, container = %id, pid = st.pid, why, "killing a container no record names");
    if st.status.enum_value_or_default() != Status::STOPPED {
        if let Err(e) = s.kill(id, "", libc::SIGKILL as u32, true).await {
            tracing::warn!(container = %id, error = %e, "kill");
        }
        match tokio::time::timeout(Duration::from_secs(10), s.wait(id, "")).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(container = %id, error = %e, "wait"),
            Err(_) => tracing::warn!(container = %id, "no exit 10 s after SIGKILL"),
        }
    }
    match s.delete(id, "").await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "delete");
            false
        }
    }
}

/// The `io.kubernetes.cri.sandbox-id` annotation of the bundle's `config.json`.
fn bundle_sandbox_id(bundle: &Path) -> Option<String> {
    let f = std::fs::File::open(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(f)).ok()?;
    v["annotations"]["io.kubernetes.cri.sandbox-id"]
        .as_str()
        .map(str::to_string)
}

/// Waits up to `limit` for `path` (an exiting shim's socket, which it unlinks) to vanish.
async fn wait_path_gone(path: &Path, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while path.exists() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
