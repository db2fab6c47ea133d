//! ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats,
//! ListMetricDescriptors, ListPodSandboxMetrics.

use crust_daemon::images::Images;
use crust_daemon::runtime::{ContainerRecord, ContainerUsage, Runtime};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::convert;
use crate::status::from_error;

fn mountpoint(images: &Images) -> String {
    images.root().join("snapshots").display().to_string()
}

fn u64v(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
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
        swap: None,
    }
}

/// CPU usage.
pub fn cpu(u: &ContainerUsage) -> cri::CpuUsage {
    cri::CpuUsage {
        timestamp: u.timestamp,
        usage_core_nano_seconds: u64v(u.cpu_ns),
        usage_nano_cores: u64v(u.cpu_nano_cores),
    }
}

/// Memory usage.
pub fn memory(u: &ContainerUsage) -> cri::MemoryUsage {
    cri::MemoryUsage {
        timestamp: u.timestamp,
        working_set_bytes: u64v(u.memory_working_set),
        available_bytes: None,
        usage_bytes: u64v(u.memory_usage),
        rss_bytes: u64v(u.memory_rss),
        page_faults: u64v(u.page_faults),
        major_page_faults: u64v(u.major_page_faults),
    }
}

pub fn container(
    rt: &Runtime,
    images: &Images,
    r: cri::ContainerStatsRequest,
) -> Result<cri::ContainerStatsResponse, Status> {
    let (c, u) = rt.container_stats(&r.container_id).map_err(from_error)?;
    Ok(cri::ContainerStatsResponse {
        stats: Some(container_stats(&c, &u, &mountpoint(images))),
    })
}

pub fn list_containers(
    rt: &Runtime,
    images: &Images,
    r: cri::ListContainerStatsRequest,
) -> cri::ListContainerStatsResponse {
    let f = r.filter.unwrap_or_default();
    let mp = mountpoint(images);
    let stats = rt
        .containers()
        .into_iter()
        .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
        .filter(|c| f.pod_sandbox_id.is_empty() || c.pod_id.starts_with(&f.pod_sandbox_id))
        .filter(|c| convert::matches(&c.spec.labels, &f.label_selector))
        .map(|c| container_stats(&c, &rt.container_usage(&c), &mp))
        .collect();
    cri::ListContainerStatsResponse { stats }
}

fn pod_stats(rt: &Runtime, images: &Images, id: &str) -> Result<cri::PodSandboxStats, Status> {
    let p = rt.pod(id).map_err(from_error)?;
    let u = rt.pod_usage(&p.id).map_err(from_error)?;
    let mp = mountpoint(images);
    let containers = rt
        .pod_containers(&p.id)
        .iter()
        .map(|c| container_stats(c, &rt.container_usage(c), &mp))
        .collect();
    Ok(cri::PodSandboxStats {
        attributes: Some(cri::PodSandboxAttributes {
            id: p.id.clone(),
            metadata: Some(convert::pod_metadata(&p)),
            labels: p
                .spec
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            annotations: p
                .spec
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu: Some(cpu(&u)),
            memory: Some(memory(&u)),
            network: None,
            process: None,
            containers,
        }),
        windows: None,
    })
}

pub fn pod(
    rt: &Runtime,
    images: &Images,
    r: cri::PodSandboxStatsRequest,
) -> Result<cri::PodSandboxStatsResponse, Status> {
    Ok(cri::PodSandboxStatsResponse {
        stats: Some(pod_stats(rt, images, &r.pod_sandbox_id)?),
    })
}

pub fn list_pods(
    rt: &Runtime,
    images: &Images,
    r: cri::ListPodSandboxStatsRequest,
) -> cri::ListPodSandboxStatsResponse {
    let f = r.filter.unwrap_or_default();
    let stats = rt
        .pods()
        .into_iter()
        .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
        .filter(|p| convert::matches(&p.spec.labels, &f.label_selector))
        .filter_map(|p| pod_stats(rt, images, &p.id).ok())
        .collect();
    cri::ListPodSandboxStatsResponse { stats }
}

const METRICS: &[(&str, &str, &[&str])] = &[
    (
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds",
        &["container", "pod"],
    ),
    (
        "container_memory_working_set_bytes",
        "Current working set in bytes",
        &["container", "pod"],
    ),
    (
        "container_memory_rss",
        "Size of RSS in bytes",
        &["container", "pod"],
    ),
];

pub fn descriptors() -> cri::ListMetricDescriptorsResponse {
    cri::ListMetricDescriptorsResponse {
        descriptors: METRICS
            .iter()
            .map(|(n, h, l)| cri::MetricDescriptor {
                name: n.to_string(),
                help: h.to_string(),
                label_keys: l.iter().map(|s| s.to_string()).collect(),
            })
            .collect(),
    }
}

pub fn pod_metrics(rt: &Runtime) -> cri::ListPodSandboxMetricsResponse {
    let ts = crust_daemon::runtime::now();
    let pod_metrics = rt
        .pods()
        .into_iter()
        .map(|p| {
            let container_metrics = rt
                .pod_containers(&p.id)
                .iter()
                .map(|c| {
                    let u = rt.container_usage(c);
                    let m = |name: &str, v: u64, t: cri::MetricType| cri::Metric {
                        name: name.into(),
                        timestamp: ts,
                        metric_type: t as i32,
                        label_values: vec![c.spec.name.clone(), p.spec.name.clone()],
                        value: Some(cri::UInt64Value { value: v }),
                    };
                    cri::ContainerMetrics {
                        container_id: c.id.clone(),
                        metrics: vec![
                            m(
                                "container_cpu_usage_seconds_total",
                                u.cpu_ns / 1_000_000_000,
                                cri::MetricType::Counter,
                            ),
                            m(
                                "container_memory_working_set_bytes",
                                u.memory_working_set,
                                cri::MetricType::Gauge,
                            ),
                            m("container_memory_rss", u.memory_rss, cri::MetricType::Gauge),
                        ],
                    }
                })
                .collect();
            cri::PodSandboxMetrics {
                pod_sandbox_id: p.id.clone(),
                metrics: vec![],
                container_metrics,
            }
        })
        .collect();
    cri::ListPodSandboxMetricsResponse { pod_metrics }
}
