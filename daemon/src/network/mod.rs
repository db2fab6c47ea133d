//! Pod networking: gives every non-hostNetwork pod sandbox its own network, through CNI
//! plugins when a CNI config is installed, else through the built-in bridge.
//!
//! [`NetworkManager`] is what RunPodSandbox / StopPodSandbox / RemovePodSandbox call:
//! [`netns::create`] pins the pod's namespace, [`NetworkManager::setup`] attaches it,
//! [`NetworkManager::teardown`] detaches it (idempotent), [`netns::remove`] unpins it.
//! [`NetworkManager::reconcile`] runs once at start-up with the set of live pods and
//! removes leftovers of every other pod (netns pins, veths, addresses, nft elements,
//! CNI cache entries and what the plugins set up).
//!
//! Invariants: the selection ([`Network`]) is re-read from the conf dir on every change
//! (see [`watch`]); teardown does not depend on the current selection — it undoes
//! whatever the pod has on disk (a built-in bridge record and/or CNI cache entries),
//! so switching backends never strands a pod.

pub mod bridge;
pub mod cni;
pub mod error;
pub mod link_stats;
pub mod netns;
pub mod types;
mod watch;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use tokio::task::JoinHandle;

use bridge::{Bridge, BridgeConfig};
use cni::{CniConfig, CniNetwork};
pub use error::{NetworkError, Result};
pub use types::{
    Bandwidth, IpRange, NetworkStatus, PodDns, PodIp, PodNetworkRequest, PodNetworkResult,
    PodRoute, PortMapping, Protocol,
};

/// Everything the network needs to know; see [`NetworkConfig::new`] for defaults.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Volatile state dir (`/run/crust`): netns pins under `ns/`.
    pub state_dir: PathBuf,
    /// CNI settings.
    pub cni: CniConfig,
    /// Built-in bridge settings.
    pub bridge: BridgeConfig,
}

impl NetworkConfig {
    /// Defaults for a daemon with persistent `root` and volatile `state`: CNI conf in
    /// `/etc/cni/net.d`, plugins in `/opt/cni/bin` then `/usr/lib/cni`, cache in
    /// `<root>/cni`, 60 s per plugin call; bridge `crust0` on the pod CIDR (else
    /// 10.88.0.0/16) with masquerading, state in `<root>/network`.
    pub fn new(root: &Path, state: &Path) -> Self {
        NetworkConfig {
            state_dir: state.to_path_buf(),
            cni: CniConfig {
                conf_dir: "/etc/cni/net.d".into(),
                bin_dirs: vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
                cache_dir: root.join("cni"),
                timeout: Duration::from_secs(60),
                ifname: bridge::POD_IFNAME.into(),
            },
            bridge: BridgeConfig {
                name: "crust0".into(),
                subnet: None,
                subnet6: None,
                masquerade: true,
                mtu: None,
                state_dir: root.join("network"),
            },
        }
    }
}

/// The network backend in use: a closed set.
#[derive(Debug, Clone)]
pub enum Network {
    /// CNI plugins per the first config of the conf dir.
    Cni(Arc<CniNetwork>),
    /// The built-in bridge (no CNI config present).
    BuiltinBridge(Arc<Bridge>),
}

/// What [`NetworkManager::reconcile`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Pods whose built-in bridge state was removed.
    pub bridge_pods: Vec<String>,
    /// Pods whose CNI attachments were deleted.
    pub cni_pods: Vec<String>,
    /// Pods whose pinned netns was removed.
    pub netns_pods: Vec<String>,
}

/// The pod network service (one per daemon).
#[derive(Debug)]
pub struct NetworkManager {
    cfg: NetworkConfig,
    bridge: Arc<Bridge>,
    selection: RwLock<std::result::Result<Network, String>>,
    pod_cidr: RwLock<Option<IpNet>>,
}

impl NetworkManager {
    /// Builds the manager and selects the backend from the conf dir. Must run inside a
    /// tokio runtime. Call [`Self::watch`] to follow conf dir changes.
    pub fn new(cfg: NetworkConfig) -> Result<Arc<Self>> {
        for d in [
            &cfg.cni.cache_dir,
            &cfg.bridge.state_dir,
            &cfg.state_dir.join("ns"),
        ] {
            crate::perms::dir(d, crate::perms::PRIVATE_DIR).map_err(|source| {
                NetworkError::State {
                    path: d.clone(),
                    source,
                }
            })?;
        }
        let bridge = Arc::new(Bridge::new(cfg.bridge.clone())?);
        let m = Arc::new(NetworkManager {
            cfg,
            bridge,
            selection: RwLock::new(Err("not loaded".into())),
            pod_cidr: RwLock::new(None),
        });
        m.reload();
        Ok(m)
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// The built-in bridge backend (also used to tear down pods set up before a switch).
    pub fn bridge(&self) -> &Arc<Bridge> {
        &self.bridge
    }

    /// Re-reads the conf dir: CNI when it holds a config, the built-in bridge when not,
    /// not ready when the first config is invalid.
    pub fn reload(&self) {
        let next = match CniNetwork::load(&self.cfg.cni) {
            Ok(Some(n)) => Ok(Network::Cni(Arc::new(n))),
            Ok(None) => Ok(Network::BuiltinBridge(self.bridge.clone())),
            Err(e) => Err(e.to_string()),
        };
        match &next {
            Ok(Network::Cni(n)) => {
                tracing::info!(network = n.name(), config = %n.path().display(), "using CNI")
            }
            Ok(Network::BuiltinBridge(_)) => {
                tracing::info!(bridge = %self.cfg.bridge.name, "using the built-in bridge")
            }
            Err(e) => tracing::warn!(error = %e, "no usable network config"),
        }
        if let Ok(mut s) = self.selection.write() {
            *s = next;
        }
    }

    /// Starts following conf dir changes (inotify); the task ends with the manager.
    pub fn watch(self: &Arc<Self>) -> Result<JoinHandle<()>> {
        watch::spawn(Arc::downgrade(self))
    }

    /// The backend in use, or why there is none.
    pub fn current(&self) -> Result<Network> {
        match self.selection.read() {
            Ok(s) => s.clone().map_err(NetworkError::NotReady),
            Err(_) => Err(NetworkError::NotReady("selection lock poisoned".into())),
        }
    }

    /// The NetworkReady condition.
    pub fn status(&self) -> NetworkStatus {
        match self.current() {
            Ok(_) => NetworkStatus {
                ready: true,
                reason: String::new(),
                message: String::new(),
            },
            Err(e) => NetworkStatus {
                ready: false,
                reason: "NetworkPluginNotReady".into(),
                message: e.to_string(),
            },
        }
    }

    /// UpdateRuntimeConfig's pod CIDR: the built-in bridge allocates from it when no
    /// subnet is configured (moving the bridge only while no pod holds an address).
    /// An IPv6 CIDR is accepted and ignored (IPv6 pod addresses need `subnet6`).
    pub async fn set_pod_cidr(&self, cidr: Option<IpNet>) -> Result<()> {
        if let Some(IpNet::V4(n)) = cidr {
            if n.prefix_len() > 30 {
                return Err(NetworkError::InvalidArgument {
                    what: "pod CIDR".into(),
                    reason: format!("{n} has no room for pods (at most /30)"),
                });
            }
        }
        if let Ok(mut c) = self.pod_cidr.write() {
            *c = cidr;
        }
        self.bridge.set_pod_cidr(cidr).await
    }

    fn effective_cidr(&self, req: &PodNetworkRequest) -> Option<IpNet> {
        req.pod_cidr
            .or_else(|| self.pod_cidr.read().ok().and_then(|c| *c))
    }

    /// Attaches the pod's netns (`req.netns`, which must exist) to the network. On
    /// failure nothing of the attempt is left.
    pub async fn setup(&self, req: &PodNetworkRequest) -> Result<PodNetworkResult> {
        netns::validate_pod_id(&req.pod_id)?;
        if !req.netns.exists() {
            return Err(NetworkError::InvalidArgument {
                what: format!("netns of pod {}", req.pod_id),
                reason: format!("{} does not exist", req.netns.display()),
            });
        }
        for (i, m) in req.port_mappings.iter().enumerate() {
            // The same host port (and address and protocol) twice: fine when it names the
            // same container port (one rule), refused when it names another.
            if let Some(o) = req.port_mappings[..i].iter().find(|o| {
                o.host_port == m.host_port
                    && o.protocol == m.protocol
                    && o.host_ip.filter(|h| !h.is_unspecified())
                        == m.host_ip.filter(|h| !h.is_unspecified())
                    && o.container_port != m.container_port
            }) {
                return Err(NetworkError::InvalidArgument {
                    what: format!("port mapping of pod {}", req.pod_id),
                    reason: format!(
                        "hostPort {}/{} maps to both containerPort {} and {}",
                        m.host_port,
                        m.protocol.as_str(),
                        o.container_port,
                        m.container_port
                    ),
                });
            }
            if m.host_port == 0 || m.container_port == 0 {
                return Err(NetworkError::InvalidArgument {
                    what: format!("port mapping of pod {}", req.pod_id),
                    reason: format!(
                        "hostPort {} / containerPort {} must be 1-65535",
                        m.host_port, m.container_port
                    ),
                });
            }
        }
        match self.current()? {
            Network::Cni(n) => n.add(req).await,
            Network::BuiltinBridge(b) => {
                let mut r = req.clone();
                r.pod_cidr = self.effective_cidr(req);
                b.setup(&r).await
            }
        }
    }

    /// Detaches the pod: CNI DEL for each cached attachment (or an uncached DEL when CNI
    /// is in use and nothing is cached), and the built-in bridge's teardown. Idempotent;
    /// the netns may already be gone.
    pub async fn teardown(&self, req: &PodNetworkRequest) -> Result<()> {
        netns::validate_pod_id(&req.pod_id)?;
        let netns = Some(req.netns.as_path()).filter(|p| !p.as_os_str().is_empty());
        let deleted = cni::del_cached(&self.cfg.cni, &req.pod_id, netns).await?;
        if deleted == 0 {
            if let Ok(Network::Cni(n)) = self.current() {
                n.del_uncached(req).await?;
            }
        }
        self.bridge.teardown(&req.pod_id).await
    }

    /// Verifies the pod's network is still as set up (CNI CHECK / bridge link check).
    pub async fn check(&self, req: &PodNetworkRequest) -> Result<()> {
        netns::validate_pod_id(&req.pod_id)?;
        match self.current()? {
            Network::Cni(n) => n.check(req).await,
            Network::BuiltinBridge(b) => b.check(&req.pod_id).await,
        }
    }

    /// Start-up cleanup: removes everything network-related of pods not in `live`
    /// (CNI attachments via DEL, bridge records, addresses, veths, nft elements, netns
    /// pins). Keeps going past individual failures and returns the first one.
    pub async fn reconcile(&self, live: &HashSet<String>) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        let mut first: Option<NetworkError> = None;
        let cache = cni::cache::Cache::new(&self.cfg.cni.cache_dir);
        let mut dead: Vec<String> = cache
            .list()
            .into_iter()
            .map(|e| e.container_id)
            .filter(|c| !live.contains(c))
            .collect();
        dead.sort();
        dead.dedup();
        for pod in dead {
            let pin = netns::pin_path(&self.cfg.state_dir, &pod);
            let ns = netns::is_pinned(&pin).then_some(pin.as_path());
            match cni::del_cached(&self.cfg.cni, &pod, ns).await {
                Ok(_) => report.cni_pods.push(pod),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        match self.bridge.reconcile(live).await {
            Ok(p) => report.bridge_pods = p,
            Err(e) => {
                first.get_or_insert(e);
            }
        }
        for pod in netns::list(&self.cfg.state_dir) {
            if !live.contains(&pod) {
                match netns::remove(&netns::pin_path(&self.cfg.state_dir, &pod)) {
                    Ok(()) => report.netns_pods.push(pod),
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
        }
        first.map_or(Ok(report), Err)
    }
}
