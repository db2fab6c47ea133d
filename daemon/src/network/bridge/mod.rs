//! The built-in bridge network, used when no CNI config is installed: bridge `crust0`
//! (configurable) holding the gateway addresses, one veth pair per pod (host side
//! `vcr<hash>` on the bridge, peer `eth0` in the pod), addresses from the persistent
//! [`ipam`], hostPorts and masquerading in [`nft`].
//!
//! Invariants: every pod that got anything has a pod record
//! (`<pods_dir>/<pod>.json`, format version 1: veth name, addresses, nft elements)
//! written *before* the veth or nft elements are created and removed *after* they are
//! gone, so teardown and reconcile always know what to undo. Teardown is idempotent.
//! The host-side veth name is a hash of bridge and pod id, so reconcile can tell live
//! pods' veths from leftovers even without a record.

pub mod ipam;
pub mod link;
pub mod nft;

use std::collections::HashSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::error::{NetworkError, Result};
use super::netns;
use super::types::{PodDns, PodIp, PodNetworkRequest, PodNetworkResult, PodRoute};
use ipam::Ipam;

/// Default IPv4 pod subnet when neither config nor a pod CIDR gives one.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";
/// Name of the pod-side interface.
pub const POD_IFNAME: &str = "eth0";
const VETH_PREFIX: &str = "vcr";

/// Configuration of the built-in bridge.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Bridge name (`crust0`).
    pub name: String,
    /// IPv4 subnet; `None` takes the pod CIDR, else [`DEFAULT_SUBNET`].
    pub subnet: Option<Ipv4Net>,
    /// Optional IPv6 subnet (dual stack).
    pub subnet6: Option<Ipv6Net>,
    /// Masquerade pod traffic leaving the subnet (turns on `net.ipv4.ip_forward`).
    pub masquerade: bool,
    /// MTU of bridge and veths (kernel default when `None`).
    pub mtu: Option<u32>,
    /// Network state root (`<root>/network`): IPAM under `ipam/<bridge>/`, pod records
    /// under `bridge/<bridge>/`.
    pub state_dir: PathBuf,
}

/// The persisted record of one pod (format version 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PodRecord {
    version: u32,
    pod: String,
    veth: String,
    ips: Vec<PodIp>,
    /// nft map elements as (map, text).
    elements: Vec<(String, String)>,
}

/// The built-in bridge backend.
#[derive(Debug)]
pub struct Bridge {
    cfg: BridgeConfig,
    host: rtnetlink::Handle,
    ipam: Ipam,
    /// Effective IPv4 subnet and the bridge index once ensured.
    state: Mutex<Option<(Ipv4Net, u32)>>,
}

impl Bridge {
    /// A backend for `cfg` (nothing is created until the first setup or [`Self::ensure`]).
    pub fn new(cfg: BridgeConfig) -> Result<Self> {
        let host = netns::netlink_host().map_err(|source| NetworkError::EnterNetns {
            path: "/proc/self/ns/net".into(),
            source,
        })?;
        let ipam = Ipam::new(cfg.state_dir.join("ipam").join(&cfg.name));
        Ok(Bridge {
            cfg,
            host,
            ipam,
            state: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BridgeConfig {
        &self.cfg
    }

    /// The IPAM of this bridge.
    pub fn ipam(&self) -> &Ipam {
        &self.ipam
    }

    fn pods_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("bridge").join(&self.cfg.name)
    }

    /// The host-side veth name of `pod` on this bridge.
    pub fn veth_name(&self, pod: &str) -> String {
        let digest = Sha256::digest(format!("{}/{pod}", self.cfg.name).as_bytes());
        format!("{VETH_PREFIX}{}", &hex::encode(digest)[..12])
    }

    fn subnet_for(&self, pod_cidr: Option<IpNet>) -> Result<Ipv4Net> {
        if let Some(s) = self.cfg.subnet {
            return Ok(s);
        }
        match pod_cidr {
            Some(IpNet::V4(n)) if n.prefix_len() <= 30 => Ok(n.trunc()),
            _ => DEFAULT_SUBNET
                .parse()
                .map_err(|_| NetworkError::InvalidArgument {
                    what: "default subnet".into(),
                    reason: DEFAULT_SUBNET.into(),
                }),
        }
    }

    fn gateways(subnet: Ipv4Net, subnet6: Option<Ipv6Net>) -> Vec<IpNet> {
        let mut out = Vec::new();
        for net in [Some(IpNet::V4(subnet)), subnet6.map(IpNet::V6)]
            .into_iter()
            .flatten()
        {
            if let Some(gw) = ipam::first_host(net) {
                if let Ok(n) = IpNet::new(gw, net.prefix_len()) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// Creates (or checks) the bridge, its addresses, sysctls and nft table; returns the
    /// IPv4 subnet in use and the bridge index.
    pub async fn ensure(&self, pod_cidr: Option<IpNet>) -> Result<(Ipv4Net, u32)> {
        let mut state = self.state.lock().await;
        let subnet = match *state {
            Some((s, _)) => s,
            None => self.subnet_for(pod_cidr)?,
        };
        if let Some((s, index)) = *state {
            match link::get(&self.host, &self.cfg.name).await? {
                Some(l) if l.header.index == index => return Ok((s, index)),
                _ => {} // deleted (or re-created by someone else): set it up again
            }
        }
        let name = &self.cfg.name;
        let index = link::ensure_bridge(
            &self.host,
            name,
            &Self::gateways(subnet, self.cfg.subnet6),
            self.cfg.mtu,
        )
        .await?;
        // hostPorts on 127.0.0.1 are DNATed to pod addresses on the bridge.
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
            "1",
        )?;
        if self.cfg.masquerade {
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        }
        nft::ensure_table(name, Some(subnet), self.cfg.subnet6, self.cfg.masquerade).await?;
        *state = Some((subnet, index));
        Ok((subnet, index))
    }

    /// Follows UpdateRuntimeConfig's pod CIDR. Without a configured subnet the bridge
    /// moves to the new CIDR as long as no pod holds an address; otherwise the change
    /// is logged and takes effect once the bridge is empty (next start-up).
    pub async fn set_pod_cidr(&self, cidr: Option<IpNet>) -> Result<()> {
        if self.cfg.subnet.is_some() {
            return Ok(());
        }
        let want = self.subnet_for(cidr)?;
        let mut state = self.state.lock().await;
        let Some((current, index)) = *state else {
            return Ok(()); // the first setup picks it up
        };
        if current == want {
            return Ok(());
        }
        if !self.ipam.allocations()?.is_empty() {
            tracing::warn!(bridge = %self.cfg.name, %current, %want,
                "pod CIDR changed while pods hold addresses; keeping the current subnet");
            return Ok(());
        }
        for gw in Self::gateways(current, None) {
            link::del_address(&self.host, index, gw, &self.cfg.name).await?;
        }
        *state = None;
        Ok(())
    }

    /// Gives the pod an interface, addresses, routes and hostPorts. On failure undoes
    /// what was done.
    pub async fn setup(&self, req: &PodNetworkRequest) -> Result<PodNetworkResult> {
        let pod = req.pod_id.as_str();
        match self.setup_inner(req).await {
            Ok(r) => Ok(r),
            Err(e) => {
                if let Err(undo) = self.teardown(pod).await {
                    tracing::warn!(pod, error = %undo, "undo of failed network setup");
                }
                Err(e)
            }
        }
    }

    async fn setup_inner(&self, req: &PodNetworkRequest) -> Result<PodNetworkResult> {
        let pod = req.pod_id.as_str();
        let (subnet, bridge_index) = self.ensure(req.pod_cidr).await?;
        let mut ips = Vec::new();
        for net in [Some(IpNet::V4(subnet)), self.cfg.subnet6.map(IpNet::V6)]
            .into_iter()
            .flatten()
        {
            let gw = ipam::first_host(net).ok_or_else(|| NetworkError::IpamExhausted {
                pod: pod.to_string(),
                subnet: net.to_string(),
            })?;
            let ip = self.ipam.allocate(pod, net, gw)?;
            let address =
                IpNet::new(ip, net.prefix_len()).map_err(|e| NetworkError::InvalidArgument {
                    what: "subnet".into(),
                    reason: e.to_string(),
                })?;
            ips.push(PodIp {
                address,
                gateway: Some(gw),
            });
        }
        let addrs: Vec<IpAddr> = ips.iter().map(|i| i.address.addr()).collect();
        let elements = nft::elements(&addrs, &req.port_mappings);
        let veth = self.veth_name(pod);
        self.write_record(&PodRecord {
            version: 1,
            pod: pod.to_string(),
            veth: veth.clone(),
            ips: ips.clone(),
            elements: elements
                .iter()
                .map(|e| (e.map.clone(), e.text.clone()))
                .collect(),
        })?;
        link::delete(&self.host, &veth).await?; // a retried setup starts clean
        link::add_veth(
            &self.host,
            &veth,
            bridge_index,
            &req.netns,
            POD_IFNAME,
            self.cfg.mtu,
        )
        .await?;
        let in_pod = netns::netlink_in(&req.netns).await?;
        let pairs: Vec<(IpNet, IpAddr)> = ips
            .iter()
            .filter_map(|i| i.gateway.map(|g| (i.address, g)))
            .collect();
        link::configure_pod(&in_pod, POD_IFNAME, &pairs, pod).await?;
        nft::add_elements(&self.cfg.name, pod, &elements, &req.port_mappings).await?;
        let routes = ips
            .iter()
            .filter_map(|i| {
                let dst = if i.address.addr().is_ipv4() {
                    "0.0.0.0/0"
                } else {
                    "::/0"
                };
                Some(PodRoute {
                    dst: dst.parse().ok()?,
                    gw: i.gateway,
                })
            })
            .collect();
        Ok(PodNetworkResult {
            interface: POD_IFNAME.to_string(),
            ips,
            routes,
            dns: PodDns::default(),
        })
    }

    /// Undoes [`Self::setup`] for `pod`: veth, nft elements, addresses, record.
    /// Idempotent; works from the record alone (no netns needed).
    pub async fn teardown(&self, pod: &str) -> Result<()> {
        let record = self.read_record(pod)?;
        let veth = record
            .as_ref()
            .map(|r| r.veth.clone())
            .unwrap_or_else(|| self.veth_name(pod));
        // Every step is tried; the record goes only when all succeeded, so a retry (or
        // reconcile) can finish the job.
        let mut first = link::delete(&self.host, &veth).await.err();
        if let Some(r) = &record {
            let elems: Vec<nft::Element> = r
                .elements
                .iter()
                .filter_map(|(map, text)| {
                    let target = text
                        .rsplit(" : ")
                        .next()?
                        .split(" . ")
                        .next()?
                        .parse()
                        .ok()?;
                    Some(nft::Element {
                        map: map.clone(),
                        text: text.clone(),
                        target,
                    })
                })
                .collect();
            if let Err(e) = nft::delete_elements(&self.cfg.name, pod, &elems).await {
                first.get_or_insert(e);
            }
        }
        if let Err(e) = self.ipam.release_pod(pod) {
            first.get_or_insert(e);
        }
        match first {
            Some(e) => Err(e),
            None => self.remove_record(pod),
        }
    }

    /// Whether the pod's host veth still exists and is on the bridge.
    pub async fn check(&self, pod: &str) -> Result<()> {
        let veth = self.veth_name(pod);
        let fail = |reason: &str| NetworkError::CheckFailed {
            pod: pod.to_string(),
            reason: reason.to_string(),
        };
        let link = link::get(&self.host, &veth)
            .await?
            .ok_or_else(|| fail("host veth is missing"))?;
        let bridge = link::get(&self.host, &self.cfg.name)
            .await?
            .ok_or_else(|| fail("bridge is missing"))?;
        if link::controller_of(&link) != Some(bridge.header.index) {
            return Err(fail("host veth is not on the bridge"));
        }
        if self.read_record(pod)?.is_none() {
            return Err(fail("no record"));
        }
        Ok(())
    }

    /// Removes everything of pods not in `live`: records, addresses, veths on the
    /// bridge and nft elements pointing at freed addresses. Returns the pods cleaned.
    pub async fn reconcile(&self, live: &HashSet<String>) -> Result<Vec<String>> {
        let mut cleaned = Vec::new();
        for pod in self.record_pods()? {
            if !live.contains(&pod) {
                self.teardown(&pod).await?;
                cleaned.push(pod);
            }
        }
        for (ip, owner) in self.ipam.allocations()? {
            if !live.contains(&owner) {
                self.ipam.release(ip)?;
                if !owner.is_empty() && !cleaned.contains(&owner) {
                    cleaned.push(owner);
                }
            }
        }
        let live_veths: HashSet<String> = live.iter().map(|p| self.veth_name(p)).collect();
        if let Some(bridge) = link::get(&self.host, &self.cfg.name).await? {
            for l in link::list(&self.host).await? {
                let Some(name) = link::name_of(&l) else {
                    continue;
                };
                if link::controller_of(&l) == Some(bridge.header.index)
                    && name.starts_with(VETH_PREFIX)
                    && !live_veths.contains(name)
                {
                    link::delete(&self.host, name).await?;
                }
            }
        }
        let allocated: HashSet<IpAddr> = self.ipam.allocations()?.into_keys().collect();
        let stale: Vec<nft::Element> = nft::list_elements(&self.cfg.name)
            .await?
            .into_iter()
            .filter(|e| !allocated.contains(&e.target))
            .collect();
        nft::delete_elements(&self.cfg.name, "reconcile", &stale).await?;
        Ok(cleaned)
    }

    /// Deletes the bridge and its nft table (tests, uninstall). Pods must be gone.
    pub async fn destroy(&self) -> Result<()> {
        link::delete(&self.host, &self.cfg.name).await?;
        nft::delete_table(&self.cfg.name).await?;
        *self.state.lock().await = None;
        Ok(())
    }

    fn record_path(&self, pod: &str) -> PathBuf {
        self.pods_dir().join(format!("{pod}.json"))
    }

    fn write_record(&self, r: &PodRecord) -> Result<()> {
        let path = self.record_path(&r.pod);
        write_atomic(&path, &serde_json::to_vec(r).unwrap_or_default())
    }

    fn read_record(&self, pod: &str) -> Result<Option<PodRecord>> {
        let path = self.record_path(pod);
        match fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(NetworkError::State { path, source }),
        }
    }

    fn remove_record(&self, pod: &str) -> Result<()> {
        let path = self.record_path(pod);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(NetworkError::State { path, source }),
        }
    }

    /// Pods with a record.
    pub fn record_pods(&self) -> Result<Vec<String>> {
        let dir = self.pods_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(NetworkError::State { path: dir, source }),
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .collect())
    }
}

/// Writes `data` to `path` via a temporary file and rename (parent created).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let err = |source| NetworkError::State {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    if fs::read_to_string(path)
        .map(|v| v.trim() == value)
        .unwrap_or(false)
    {
        return Ok(());
    }
    fs::write(path, value).map_err(|source| NetworkError::Sysctl {
        path: path.into(),
        source,
    })
}
