//! ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats: the core's
//! usage readings ([`Runtime::container_usage`], [`Runtime::pod_usage`]) as CRI messages.
//! The readings block (cgroupfs, a walk of the writable layer, a netlink dump in the pod's
//! namespace), so they run on the blocking pool.

use std::sync::Arc;

use crust_daemon::images::Images;
use crust_daemon::network::link_stats::LinkStats;
use crust_daemon::runtime::{ContainerRecord, ContainerUsage, NetworkUsage, PodRecord, Runtime};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::convert;
use crate::status::from_error;

/// The interface kubelet reports as a pod's network when it exists (else the first one).
const DEFAULT_INTERFACE: &str = "eth0";

/// Where writable layers live (the filesystem CRI stats name for them).
pub(super) fn mountpoint(images: &Images) -> String {
    images.root().join("snapshots").display().to_string()
}

fn u64v(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
}

/// Runs `f` on the blocking pool; a panic in it is an Internal error naming `what`.
pub(super) async fn blocking<T, F>(what: &'static str, f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("{what}: {e}")))
}

/// ContainerStats.
pub fn container_stats(
    c: &ContainerRecord,
    u: &ContainerUsage,
    mountpoint: &str,
) -> cri::ContainerStats {
    cri::ContainerStats {
        attributes: Some(cri::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(convert::container_metadata(c)),
            labels: convert::hmap(&c.spec.labels),
            annotations: convert::hmap(&c.spec.annotations),
        }),
        cpu: Some(cpu(u)),
        memory: Some(memory(u)),
        writable_layer: Some(cri::FilesystemUsage {
            timestamp: u.timestamp,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: mountpoint.into(),
            }),
            used_bytes: u64v(u.fs_bytes),
            inodes_used: u64v(u.fs_inodes),
        }),
        swap: u.swap_usage.map(|s| cri::SwapUsage {
            timestamp: u.timestamp,
            swap_available_bytes: None,
            swap_usage_bytes: u64v(s),
        }),
    }
}

/// CPU usage; the rate is left out until the shared history has one.
pub fn cpu(u: &ContainerUsage) -> cri::CpuUsage {
    cri::CpuUsage {
        timestamp: u.timestamp,
        usage_core_nano_seconds: u64v(u.cpu_ns),
        usage_nano_cores: u.cpu_nano_cores.and_then(u64v),
    }
}

/// Memory usage.
pub fn memory(u: &ContainerUsage) -> cri::MemoryUsage {
    cri::MemoryUsage {
        timestamp: u.timestamp,
        working_set_bytes: u64v(u.memory_working_set),
        available_bytes: u.memory_available.and_then(u64v),
        usage_bytes: u64v(u.memory_usage),
        rss_bytes: u64v(u.memory_rss),
        page_faults: u64v(u.page_faults),
        major_page_faults: u64v(u.major_page_faults),
    }
}

fn interface(l: &LinkStats) -> cri::NetworkInterfaceUsage {
    cri::NetworkInterfaceUsage {
        name: l.name.clone(),
        rx_bytes: u64v(l.rx_bytes),
        rx_errors: u64v(l.rx_errors),
        tx_bytes: u64v(l.tx_bytes),
        tx_errors: u64v(l.tx_errors),
    }
}

/// Network usage: every interface, and `eth0` (else the first) as the default one.
pub fn network(n: &NetworkUsage) -> cri::NetworkUsage {
    let default = n
        .interfaces
        .iter()
        .find(|l| l.name == DEFAULT_INTERFACE)
        .or(n.interfaces.first());
    cri::NetworkUsage {
        timestamp: n.timestamp,
        default_interface: default.map(interface),
        interfaces: n.interfaces.iter().map(interface).collect(),
    }
}

pub async fn container(
    rt: &Arc<Runtime>,
    images: &Images,
    r: cri::ContainerStatsRequest,
) -> Result<cri::ContainerStatsResponse, Status> {
    let (rt, mp) = (rt.clone(), mountpoint(images));
    blocking("ContainerStats", move || {
        let (c, u) = rt.container_stats(&r.container_id).map_err(from_error)?;
        Ok(cri::ContainerStatsResponse {
            stats: Some(container_stats(&c, &u, &mp)),
        })
    })
    .await?
}

pub async fn list_containers(
    rt: &Arc<Runtime>,
    images: &Images,
    r: cri::ListContainerStatsRequest,
) -> Result<cri::ListContainerStatsResponse, Status> {
    let (rt, mp) = (rt.clone(), mountpoint(images));
    let f = r.filter.unwrap_or_default();
    blocking("ListContainerStats", move || {
        let stats = rt
            .containers()
            .into_iter()
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| f.pod_sandbox_id.is_empty() || c.pod_id.starts_with(&f.pod_sandbox_id))
            .filter(|c| convert::matches(&c.spec.labels, &f.label_selector))
            .map(|c| container_stats(&c, &rt.container_usage(&c), &mp))
            .collect();
        cri::ListContainerStatsResponse { stats }
    })
    .await
}

fn pod_stats(rt: &Runtime, p: &PodRecord, mp: &str) -> cri::PodSandboxStats {
    let u = rt.pod_usage(p);
    cri::PodSandboxStats {
        attributes: Some(cri::PodSandboxAttributes {
            id: p.id.clone(),
            metadata: Some(convert::pod_metadata(p)),
            labels: convert::hmap(&p.spec.labels),
            annotations: convert::hmap(&p.spec.annotations),
        }),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu: Some(cpu(&u.usage)),
            memory: Some(memory(&u.usage)),
            network: u.network.as_ref().map(network),
            process: u.process_count.map(|n| cri::ProcessUsage {
                timestamp: u.usage.timestamp,
                process_count: u64v(n),
            }),
            containers: u
                .containers
                .iter()
                .map(|(c, cu)| container_stats(c, cu, mp))
                .collect(),
        }),
        windows: None,
    }
}

pub async fn pod(
    rt: &Arc<Runtime>,
    images: &Images,
    r: cri::PodSandboxStatsRequest,
) -> Result<cri::PodSandboxStatsResponse, Status> {
    let (rt, mp) = (rt.clone(), mountpoint(images));
    blocking("PodSandboxStats", move || {
        let p = rt.pod(&r.pod_sandbox_id).map_err(from_error)?;
        Ok(cri::PodSandboxStatsResponse {
            stats: Some(pod_stats(&rt, &p, &mp)),
        })
    })
    .await?
}

pub async fn list_pods(
    rt: &Arc<Runtime>,
    images: &Images,
    r: cri::ListPodSandboxStatsRequest,
) -> Result<cri::ListPodSandboxStatsResponse, Status> {
    let (rt, mp) = (rt.clone(), mountpoint(images));
    let f = r.filter.unwrap_or_default();
    blocking("ListPodSandboxStats", move || {
        let stats = rt
            .pods()
            .into_iter()
            .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
            .filter(|p| convert::matches(&p.spec.labels, &f.label_selector))
            .map(|p| pod_stats(&rt, &p, &mp))
            .collect();
        cri::ListPodSandboxStatsResponse { stats }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, rx: u64) -> LinkStats {
        LinkStats {
            name: name.into(),
            rx_bytes: rx,
            rx_errors: 1,
            tx_bytes: 2 * rx,
            tx_errors: 2,
            ..Default::default()
        }
    }

    #[test]
    fn network_default_is_eth0_else_the_first() {
        let n = NetworkUsage {
            timestamp: 5,
            interfaces: vec![link("net1", 10), link("eth0", 20)],
        };
        let c = network(&n);
        let d = c.default_interface.unwrap();
        assert_eq!((d.name.as_str(), d.rx_bytes.unwrap().value), ("eth0", 20));
        assert_eq!(d.tx_bytes.unwrap().value, 40);
        assert_eq!(
            (d.rx_errors.unwrap().value, d.tx_errors.unwrap().value),
            (1, 2)
        );
        assert_eq!(c.interfaces.len(), 2);
        assert_eq!(c.timestamp, 5);
        let n = NetworkUsage {
            timestamp: 5,
            interfaces: vec![link("net1", 10)],
        };
        assert_eq!(network(&n).default_interface.unwrap().name, "net1");
    }

    #[test]
    fn unknown_rate_and_limit_are_left_out() {
        let u = ContainerUsage {
            cpu_ns: 7,
            ..Default::default()
        };
        assert_eq!(cpu(&u).usage_nano_cores, None);
        assert_eq!(cpu(&u).usage_core_nano_seconds.unwrap().value, 7);
        assert_eq!(memory(&u).available_bytes, None);
        let u = ContainerUsage {
            cpu_nano_cores: Some(0),
            memory_available: Some(3),
            ..Default::default()
        };
        assert_eq!(cpu(&u).usage_nano_cores.unwrap().value, 0);
        assert_eq!(memory(&u).available_bytes.unwrap().value, 3);
    }
}
