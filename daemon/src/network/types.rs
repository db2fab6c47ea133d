//! Domain types crossing the network API: what RunPodSandbox asks for
//! ([`PodNetworkRequest`]) and what it gets back ([`PodNetworkResult`]). No CRI protobuf
//! types; the CRI front converts. Serde shapes of the capability args follow the CNI
//! conventions document (`portMappings`, `bandwidth`, `ipRanges`), so they can be passed
//! to plugins unchanged.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Transport protocol of a hostPort mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The lower-case name used by CNI and nftables.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One hostPort mapping (CNI `portMappings` capability entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port on the host.
    pub host_port: u16,
    /// Port inside the pod.
    pub container_port: u16,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Host address to bind; `None` means every local address.
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
}

/// Traffic shaping (CNI `bandwidth` capability), rates in bits/s, bursts in bits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    /// Ingress rate limit.
    pub ingress_rate: u64,
    /// Ingress burst.
    pub ingress_burst: u64,
    /// Egress rate limit.
    pub egress_rate: u64,
    /// Egress burst.
    pub egress_burst: u64,
}

/// One address range (CNI `ipRanges` capability entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    /// Subnet to allocate from.
    pub subnet: IpNet,
    /// First address to hand out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    /// Last address to hand out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    /// Gateway of the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// What a pod sandbox needs from the network.
#[derive(Debug, Clone, Default)]
pub struct PodNetworkRequest {
    /// Sandbox id (the CNI container id); a single path component.
    pub pod_id: String,
    /// Pod name (K8S_POD_NAME).
    pub name: String,
    /// Pod namespace (K8S_POD_NAMESPACE).
    pub namespace: String,
    /// Pod UID (K8S_POD_UID).
    pub uid: String,
    /// Path of the pod's network namespace (usually a pinned netns, see
    /// [`super::netns`]).
    pub netns: PathBuf,
    /// hostPort mappings.
    pub port_mappings: Vec<PortMapping>,
    /// Traffic shaping, if requested by annotations.
    pub bandwidth: Option<Bandwidth>,
    /// Address ranges (CNI `ipRanges`), outer list per address family.
    pub ip_ranges: Vec<Vec<IpRange>>,
    /// Pod CIDR given by UpdateRuntimeConfig, if any; the built-in bridge allocates from
    /// it when no subnet is configured.
    pub pod_cidr: Option<IpNet>,
}

/// One address given to the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIp {
    /// Address with prefix length.
    pub address: IpNet,
    /// Gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// One route inside the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRoute {
    /// Destination.
    pub dst: IpNet,
    /// Next hop, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// DNS settings a plugin returned (crust's resolv.conf comes from the CRI DNSConfig;
/// this is informational).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// What the pod got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNetworkResult {
    /// Interface inside the pod (`eth0`).
    pub interface: String,
    /// Addresses, IPv4 first.
    pub ips: Vec<PodIp>,
    /// Routes inside the pod.
    pub routes: Vec<PodRoute>,
    /// DNS settings.
    pub dns: PodDns,
}

impl PodNetworkResult {
    /// The primary address (first IPv4, else first IPv6), as PodSandboxStatus reports it.
    pub fn primary_ip(&self) -> Option<IpAddr> {
        self.ips
            .iter()
            .map(|ip| ip.address.addr())
            .find(IpAddr::is_ipv4)
            .or_else(|| self.ips.first().map(|ip| ip.address.addr()))
    }

    /// The other addresses, in order (PodSandboxStatus `additional_ips`).
    pub fn additional_ips(&self) -> Vec<IpAddr> {
        let primary = self.primary_ip();
        self.ips
            .iter()
            .map(|ip| ip.address.addr())
            .filter(|ip| Some(*ip) != primary)
            .collect()
    }
}

/// NetworkReady condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkStatus {
    /// Whether pods can get a network.
    pub ready: bool,
    /// CamelCase reason when not ready (`NetworkPluginNotReady`), empty when ready.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
}
