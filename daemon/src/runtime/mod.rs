//! The runtime half of the core: pod sandboxes (pinned namespaces, pod files, network),
//! containers (writable snapshot, OCI spec, task in the pod's shim), their state machine,
//! events, stats and recovery after a crash. CRI-free: the front translates into
//! [`types`].
//!
//! Grouped by concept: `pod/` and `container/` (one file per verb), `io/` (exec, attach,
//! port-forward), `oci/` (the runtime spec), `shim/` (launching and calling shims). [`Runtime`] holds the
//! records in memory, mirrored in the metadata store: every state change is written
//! (one transaction) before it is reported, so `kill -9` at any point and
//! [`Runtime::recover`] bring back the same pods and containers.
//!
//! Container states: `Created` → `Running` → `Exited` (exit seen through the shim's
//! `Wait`, which a watcher task per running container holds); `Unknown` when the shim is
//! gone without an exit record. Invariants: records change only under the runtime's
//! lock, never held across an await; a pod is removed only with its containers.

pub mod cgroup;
pub mod checkpoint;
mod clock;
mod container;
pub mod error;
mod io;
pub mod oci;
pub mod pod;
mod recover;
pub mod shim;
mod shim_died;
pub mod stats;
pub mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use sha2::Digest as _;
use tokio::sync::broadcast;

pub use clock::now;
pub use error::{Result, RuntimeError};
pub use io::exec_sync::ExecOutput;
pub use io::pipe::{Input, Output, StreamIo, TermSize};
use shim::{Shim, ShimConfig};
pub use types::*;

use crate::images::{Images, Inflight};
use crate::metadata::{Change, Read as _, Table, Writer};
use crate::network::NetworkManager;

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Persistent root.
    pub root: PathBuf,
    /// Volatile state.
    pub state: PathBuf,
    /// How shims are started.
    pub shim: ShimConfig,
    /// Cgroup parent of pods that do not name one (a slice with the systemd driver).
    pub cgroup_root: String,
    /// Who makes the cgroups of pods and containers.
    pub cgroup_driver: cgroup::CgroupDriver,
    /// Whether non-hostNetwork pods get a network from [`NetworkManager`] (else loopback).
    pub network: bool,
    /// Directories of CDI spec files, lowest priority first ([`crate::cdi`]).
    pub cdi_spec_dirs: Vec<PathBuf>,
}

#[derive(Debug, Default)]
struct Store {
    pods: BTreeMap<String, PodRecord>,
    containers: BTreeMap<String, ContainerRecord>,
}

/// The runtime service.
pub struct Runtime {
    cfg: RuntimeConfig,
    images: Arc<Images>,
    writer: Writer,
    network: Option<Arc<NetworkManager>>,
    /// Shared with the metadata writer thread, which applies each commit here in commit
    /// order (see [`Runtime::commit`]).
    store: Arc<Mutex<Store>>,
    shims: tokio::sync::Mutex<BTreeMap<String, Shim>>,
    events: broadcast::Sender<ContainerEvent>,
    locks: Inflight,
    min_oom: i64,
    /// CPU sample history of every container and pod, shared by all stats callers.
    cpu: stats::CpuHistory,
    /// Stops the background CPU sampler when the runtime goes.
    _sampler: Option<stats::Sampler>,
    /// Itself, for the tasks it spawns from `&self` methods (the shim watchers).
    me: Weak<Runtime>,
    /// Whether [`Runtime::recover_host`] is done (see [`Runtime::host_recovered`]).
    host_done: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("cfg", &self.cfg).finish()
    }
}

/// A new 64-hex id.
fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = sha2::Sha256::new();
    h.update(now().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    if let Ok(b) = std::fs::read("/proc/sys/kernel/random/uuid") {
        h.update(b);
    }
    hex::encode(h.finalize())
}

impl Runtime {
    /// Loads the records (no shim contact yet: call [`Runtime::recover`], then
    /// [`Runtime::recover_host`], without which RunPodSandbox and CreateContainer wait).
    pub fn open(
        cfg: RuntimeConfig,
        images: Arc<Images>,
        network: Option<Arc<NetworkManager>>,
    ) -> Result<Arc<Runtime>> {
        let meta = images.metadata();
        let tx = meta.read()?;
        let mut store = Store::default();
        for (id, rec) in tx.list_json::<PodRecord>(Table::Pods)? {
            if rec.version > RECORD_VERSION {
                return Err(RuntimeError::Invalid(format!(
                    "pod record {id} has version {}, this crust reads {RECORD_VERSION}",
                    rec.version
                )));
            }
            store.pods.insert(id, rec);
        }
        for (id, rec) in tx.list_json::<ContainerRecord>(Table::Containers)? {
            if rec.version > RECORD_VERSION {
                return Err(RuntimeError::Invalid(format!(
                    "container record {id} has version {}, this crust reads {RECORD_VERSION}",
                    rec.version
                )));
            }
            store.containers.insert(id, rec);
        }
        for d in ["pods", "bundles", "shims", "runc", "exec", "attach"] {
            let p = cfg.state.join(d);
            // `bundles` is traversable (not listable, as the state dir): the root of a pod's
            // user namespace reaches its container's rootfs through it (runc does too).
            let mode = if d == "bundles" {
                crate::perms::TOP
            } else {
                crate::perms::PRIVATE_DIR
            };
            crate::perms::dir(&p, mode).map_err(error::io("create", &p))?;
        }
        let (events, _) = broadcast::channel(1024);
        let writer = Writer::start(meta)?;
        Ok(Arc::new_cyclic(|me| Runtime {
            cfg,
            images,
            writer,
            network,
            store: Arc::new(Mutex::new(store)),
            shims: tokio::sync::Mutex::new(BTreeMap::new()),
            events,
            locks: Inflight::default(),
            min_oom: oci::resources::min_oom_score_adj(),
            cpu: stats::CpuHistory::default(),
            _sampler: stats::spawn_sampler(me.clone()),
            me: me.clone(),
            host_done: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// The network manager, when pods get networks.
    pub fn network(&self) -> Option<&Arc<NetworkManager>> {
        self.network.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to container events.
    pub fn subscribe(&self) -> broadcast::Receiver<ContainerEvent> {
        self.events.subscribe()
    }

    fn emit(&self, container_id: &str, pod_id: &str, kind: EventKind) {
        let _ = self.events.send(ContainerEvent {
            container_id: container_id.into(),
            pod_id: pod_id.into(),
            kind,
            at: now(),
        });
    }

    /// Every pod.
    pub fn pods(&self) -> Vec<PodRecord> {
        self.lock().pods.values().cloned().collect()
    }

    /// Every container.
    pub fn containers(&self) -> Vec<ContainerRecord> {
        self.lock().containers.values().cloned().collect()
    }

    /// A pod by id or unique id prefix.
    pub fn pod(&self, id: &str) -> Result<PodRecord> {
        let st = self.lock();
        find(&st.pods, id)
            .cloned()
            .ok_or_else(|| RuntimeError::PodNotFound(id.into()))
    }

    /// A container by id or unique id prefix.
    pub fn container(&self, id: &str) -> Result<ContainerRecord> {
        let st = self.lock();
        find(&st.containers, id)
            .cloned()
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.into()))
    }

    /// Commits `changes` through the group-commit writer (off the async workers, one fsync
    /// for every change that arrives while another commit runs), then applies `mirror` to
    /// the in-memory records on the writer thread, so memory changes in commit order.
    async fn commit(
        &self,
        changes: Vec<Change>,
        mirror: impl FnOnce(&mut Store) + Send + 'static,
    ) -> Result<()> {
        let store = self.store.clone();
        let then = move || mirror(&mut store.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(self.writer.commit_then(changes, then).await?)
    }

    async fn save_pod(&self, rec: &PodRecord) -> Result<()> {
        let put = Change::put_json(Table::Pods, &rec.id, rec)?;
        let rec = rec.clone();
        self.commit(vec![put], move |st| {
            st.pods.insert(rec.id.clone(), rec);
        })
        .await
    }

    async fn save_container(&self, rec: &ContainerRecord) -> Result<()> {
        let put = Change::put_json(Table::Containers, &rec.id, rec)?;
        let rec = rec.clone();
        self.commit(vec![put], move |st| {
            st.containers.insert(rec.id.clone(), rec);
        })
        .await
    }

    /// Applies `f` to the stored container `id` and persists it.
    async fn update_container(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let mut rec = self.container(id)?;
        f(&mut rec);
        self.save_container(&rec).await?;
        Ok(rec)
    }

    async fn forget_container(&self, id: &str) -> Result<()> {
        let key = id.to_string();
        let delete = Change::Delete {
            table: Table::Containers,
            key: key.clone(),
        };
        self.commit(vec![delete], move |st| {
            st.containers.remove(&key);
        })
        .await?;
        self.cpu.forget(id);
        Ok(())
    }

    async fn forget_pod(&self, id: &str) -> Result<()> {
        let key = id.to_string();
        let delete = Change::Delete {
            table: Table::Pods,
            key: key.clone(),
        };
        self.commit(vec![delete], move |st| {
            st.pods.remove(&key);
        })
        .await?;
        self.cpu.forget(&stats::pod_key(id));
        Ok(())
    }

    /// The connection to `pod`'s shim, if it has one.
    async fn shim(&self, pod_id: &str) -> Result<Option<Shim>> {
        let mut shims = self.shims.lock().await;
        if let Some(s) = shims.get(pod_id) {
            return Ok(Some(s.clone()));
        }
        let pod = self.pod(pod_id)?;
        if self.pod_containers(&pod.id).is_empty() && pod.shim_address.is_none() {
            return Ok(None);
        }
        let addr = pod
            .shim_address
            .unwrap_or_else(|| shim::address_for(&self.cfg.shim, &pod.id));
        let s = Shim::connect(&addr, pod_id).await?;
        self.cache_shim(&mut shims, pod_id, s.clone());
        Ok(Some(s))
    }

    /// Keeps `s` as `pod_id`'s connection and starts watching for its shim's death.
    fn cache_shim(&self, shims: &mut BTreeMap<String, Shim>, pod_id: &str, s: Shim) {
        shims.insert(pod_id.into(), s.clone());
        self.watch_shim(pod_id, s);
    }

    /// Asks `pod_id`'s shim to exit (it does once it has no containers) and forgets the
    /// connection.
    async fn stop_shim(&self, pod_id: &str) {
        let s = self.shims.lock().await.remove(pod_id);
        if let Some(s) = s {
            s.shutdown().await;
        }
    }

    async fn drop_shim(&self, pod_id: &str) {
        self.shims.lock().await.remove(pod_id);
    }

    /// Containers of `pod_id`.
    pub fn pod_containers(&self, pod_id: &str) -> Vec<ContainerRecord> {
        self.lock()
            .containers
            .values()
            .filter(|c| c.pod_id == pod_id)
            .cloned()
            .collect()
    }
}

fn find<'a, T>(map: &'a BTreeMap<String, T>, id: &str) -> Option<&'a T> {
    if id.is_empty() {
        return None;
    }
    if let Some(v) = map.get(id) {
        return Some(v);
    }
    let mut it = map
        .range(id.to_string()..)
        .take_while(|(k, _)| k.starts_with(id));
    match (it.next(), it.next()) {
        (Some((_, v)), None) => Some(v),
        _ => None,
    }
}
