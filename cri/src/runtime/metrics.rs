//! ListMetricDescriptors and ListPodSandboxMetrics (KEP-2371): the cadvisor metrics of crust's
//! pods and containers, for kubelet's CRI metrics path (`/metrics/cadvisor` with
//! `PodAndContainerStatsFromCRI`), since cadvisor itself knows only containerd's and CRI-O's
//! containers.
//!
//! Names and meanings are cadvisor's; label keys are the ones containerd serves (`pod`,
//! `namespace`, `container`, `id`, `image`, then the metric's own, such as `interface` or
//! `device`). Container series come from each running container's cgroup, pod series
//! (`container` and `image` empty, `id` the sandbox id, as cadvisor's pod cgroups) from the
//! pod's cgroup and network namespace, for ready pods. Values are read live, so every
//! timestamp is 0 (the CRI's "gathered live"). The CRI carries integers: seconds counters are
//! whole seconds, as containerd and CRI-O report them. Each metric's type (counter or gauge)
//! is fixed in [`DESCRIPTORS`], the one table both RPCs read.

use std::sync::Arc;

use crust_daemon::runtime::stats::CgroupReading;
use crust_daemon::runtime::{
    ContainerRecord, ContainerState, NetworkUsage, PodRecord, PodState, Runtime,
};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::stats::blocking;

/// Label keys every metric starts with, in this order.
const BASE_LABELS: [&str; 5] = ["pod", "namespace", "container", "id", "image"];

const NS_PER_SEC: u64 = 1_000_000_000;

/// One metric crust serves.
struct Descriptor {
    name: &'static str,
    help: &'static str,
    /// Label keys after [`BASE_LABELS`].
    labels: &'static [&'static str],
    kind: cri::MetricType,
}

/// A metric of type `kind` (the one constructor behind [`counter`] and [`gauge`]).
const fn metric(
    kind: cri::MetricType,
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Descriptor {
    Descriptor {
        name,
        help,
        labels,
        kind,
    }
}

const fn counter(n: &'static str, h: &'static str, l: &'static [&'static str]) -> Descriptor {
    metric(cri::MetricType::Counter, n, h, l)
}

const fn gauge(n: &'static str, h: &'static str, l: &'static [&'static str]) -> Descriptor {
    metric(cri::MetricType::Gauge, n, h, l)
}

const NET: &[&str] = &["interface"];
const DEV: &[&str] = &["device"];

/// Every metric, with its labels and type.
const DESCRIPTORS: &[Descriptor] = &[
    counter("container_cpu_usage_seconds_total", "CPU time used, in seconds (cpu=\"total\": all CPUs together).", &["cpu"]),
    counter("container_cpu_user_seconds_total", "CPU time used in user mode, in seconds.", &[]),
    counter("container_cpu_system_seconds_total", "CPU time used in kernel mode, in seconds.", &[]),
    counter("container_cpu_cfs_periods_total", "CFS enforcement periods that have elapsed.", &[]),
    counter("container_cpu_cfs_throttled_periods_total", "CFS periods in which the cgroup was throttled.", &[]),
    counter("container_cpu_cfs_throttled_seconds_total", "Time the cgroup was throttled, in seconds.", &[]),
    gauge("container_memory_usage_bytes", "Memory in use, page cache included, in bytes.", &[]),
    gauge("container_memory_working_set_bytes", "Memory in use minus inactive file pages, in bytes.", &[]),
    gauge("container_memory_rss", "Anonymous memory (RSS), in bytes.", &[]),
    gauge("container_memory_cache", "Page cache, in bytes.", &[]),
    gauge("container_memory_mapped_file", "Memory-mapped file pages, in bytes.", &[]),
    gauge("container_memory_swap", "Swap in use, in bytes (only with swap accounting).", &[]),
    gauge("container_memory_max_usage_bytes", "Highest memory usage recorded, in bytes.", &[]),
    counter("container_memory_failcnt", "Times memory usage hit the limit.", &[]),
    counter("container_memory_failures_total", "Page faults (failure_type pgfault or pgmajfault) of the cgroup alone (scope container) or with its descendants (scope hierarchy).", &["failure_type", "scope"]),
    counter("container_oom_events_total", "OOM kills recorded for the cgroup.", &[]),
    gauge("container_processes", "Processes in the cgroup.", &[]),
    gauge("container_threads", "Tasks (threads) in the cgroup, as the pids controller counts them.", &[]),
    gauge("container_threads_max", "The pids controller's limit (0: no limit).", &[]),
    gauge("container_file_descriptors", "Open file descriptors of the cgroup's processes.", &[]),
    gauge("container_sockets", "Open sockets of the cgroup's processes.", &[]),
    counter("container_fs_reads_bytes_total", "Bytes read from the block device.", DEV),
    counter("container_fs_writes_bytes_total", "Bytes written to the block device.", DEV),
    counter("container_fs_reads_total", "Reads completed on the block device.", DEV),
    counter("container_fs_writes_total", "Writes completed on the block device.", DEV),
    counter("container_blkio_device_usage_total", "Bytes transferred per block device and operation.", &["device", "major", "minor", "operation"]),
    gauge("container_fs_usage_bytes", "Bytes used by the container's writable layer (device: the snapshots directory).", DEV),
    counter("container_network_receive_bytes_total", "Bytes received.", NET),
    counter("container_network_receive_packets_total", "Packets received.", NET),
    counter("container_network_receive_packets_dropped_total", "Packets dropped on receive.", NET),
    counter("container_network_receive_errors_total", "Receive errors.", NET),
    counter("container_network_transmit_bytes_total", "Bytes sent.", NET),
    counter("container_network_transmit_packets_total", "Packets sent.", NET),
    counter("container_network_transmit_packets_dropped_total", "Packets dropped on transmit.", NET),
    counter("container_network_transmit_errors_total", "Transmit errors.", NET),
    gauge("container_spec_cpu_period", "CFS period the container was created with, in microseconds.", &[]),
    gauge("container_spec_cpu_quota", "CFS quota the container was created with, in microseconds.", &[]),
    gauge("container_spec_cpu_shares", "CPU shares the container was created with.", &[]),
    gauge("container_spec_memory_limit_bytes", "Memory limit the container was created with (0: none).", &[]),
    gauge("container_spec_memory_swap_limit_bytes", "Memory+swap limit the container was created with.", &[]),
    gauge("container_start_time_seconds", "When the container started, in seconds since the epoch.", &[]),
    gauge("container_last_seen", "When crust last saw the container, in seconds since the epoch.", &[]),
];

fn descriptor(name: &str) -> Option<&'static Descriptor> {
    DESCRIPTORS.iter().find(|d| d.name == name)
}

/// ListMetricDescriptors.
pub fn descriptors() -> cri::ListMetricDescriptorsResponse {
    cri::ListMetricDescriptorsResponse {
        descriptors: DESCRIPTORS
            .iter()
            .map(|d| cri::MetricDescriptor {
                name: d.name.into(),
                help: d.help.into(),
                label_keys: BASE_LABELS
                    .iter()
                    .chain(d.labels)
                    .map(|s| s.to_string())
                    .collect(),
            })
            .collect(),
    }
}

/// Builds the metrics of one pod or container: base label values fixed, the rest per series.
struct Series {
    base: Vec<String>,
    out: Vec<cri::Metric>,
}

impl Series {
    fn new(pod: &PodRecord, container: &str, id: &str, image: &str) -> Self {
        Series {
            base: vec![
                pod.spec.name.clone(),
                pod.spec.namespace.clone(),
                container.into(),
                id.into(),
                image.into(),
            ],
            out: Vec::new(),
        }
    }

    /// Adds one value of metric `name` (which must be in [`DESCRIPTORS`], with `labels`
    /// matching its own label keys).
    fn push(&mut self, name: &'static str, labels: &[&str], value: u64) {
        let Some(d) = descriptor(name) else {
            debug_assert!(false, "metric {name} has no descriptor");
            return;
        };
        debug_assert_eq!(labels.len(), d.labels.len(), "labels of {name}");
        self.out.push(cri::Metric {
            name: name.into(),
            timestamp: 0,
            metric_type: d.kind as i32,
            label_values: self
                .base
                .iter()
                .cloned()
                .chain(labels.iter().map(|s| s.to_string()))
                .collect(),
            value: Some(cri::UInt64Value { value }),
        });
    }
}

/// `/dev/<name>` of block device `major:minor` (from sysfs), else `major:minor`.
fn block_device(major: u64, minor: u64) -> String {
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|n| format!("/dev/{n}")))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}

/// The series every cgroup has: CPU, memory, processes, block I/O.
fn cgroup_series(m: &mut Series, r: &CgroupReading) {
    let s = &r.stats;
    let (cpu, mem) = (&s.cpu, &s.memory);
    m.push(
        "container_cpu_usage_seconds_total",
        &["total"],
        cpu.usage.total / NS_PER_SEC,
    );
    m.push(
        "container_cpu_user_seconds_total",
        &[],
        cpu.usage.user / NS_PER_SEC,
    );
    m.push(
        "container_cpu_system_seconds_total",
        &[],
        cpu.usage.kernel / NS_PER_SEC,
    );
    m.push(
        "container_cpu_cfs_periods_total",
        &[],
        cpu.throttling.periods,
    );
    m.push(
        "container_cpu_cfs_throttled_periods_total",
        &[],
        cpu.throttling.throttled_periods,
    );
    m.push(
        "container_cpu_cfs_throttled_seconds_total",
        &[],
        cpu.throttling.throttled_time / NS_PER_SEC,
    );
    m.push("container_memory_usage_bytes", &[], mem.usage.usage);
    m.push("container_memory_working_set_bytes", &[], mem.working_set());
    m.push("container_memory_rss", &[], mem.rss());
    m.push("container_memory_cache", &[], mem.page_cache());
    m.push("container_memory_mapped_file", &[], mem.mapped_file());
    if let Some(swap) = mem.swap_usage() {
        m.push("container_memory_swap", &[], swap);
    }
    if mem.usage.max > 0 {
        m.push("container_memory_max_usage_bytes", &[], mem.usage.max);
    }
    m.push("container_memory_failcnt", &[], mem.usage.failcnt);
    for fault in ["pgfault", "pgmajfault"] {
        let own = mem.raw.get(fault).copied().unwrap_or(0);
        m.push(
            "container_memory_failures_total",
            &[fault, "container"],
            own,
        );
        m.push(
            "container_memory_failures_total",
            &[fault, "hierarchy"],
            mem.stat(fault),
        );
    }
    m.push("container_oom_events_total", &[], r.oom_kills);
    m.push("container_processes", &[], r.processes);
    m.push("container_threads", &[], s.pids.current);
    m.push("container_threads_max", &[], s.pids.limit);
    m.push("container_file_descriptors", &[], r.file_descriptors);
    m.push("container_sockets", &[], r.sockets);
    for e in &s.blkio.io_service_bytes_recursive {
        let dev = block_device(e.major, e.minor);
        let (maj, min) = (e.major.to_string(), e.minor.to_string());
        let op = e.op.as_str();
        m.push(
            "container_blkio_device_usage_total",
            &[&dev, &maj, &min, op],
            e.value,
        );
        match op {
            "Read" => m.push("container_fs_reads_bytes_total", &[&dev], e.value),
            "Write" => m.push("container_fs_writes_bytes_total", &[&dev], e.value),
            _ => {}
        }
    }
    for e in &s.blkio.io_serviced_recursive {
        let dev = block_device(e.major, e.minor);
        match e.op.as_str() {
            "Read" => m.push("container_fs_reads_total", &[&dev], e.value),
            "Write" => m.push("container_fs_writes_total", &[&dev], e.value),
            _ => {}
        }
    }
}

/// A pod's network series, per interface.
fn network_series(m: &mut Series, n: &NetworkUsage) {
    for l in &n.interfaces {
        let i = [l.name.as_str()];
        m.push("container_network_receive_bytes_total", &i, l.rx_bytes);
        m.push("container_network_receive_packets_total", &i, l.rx_packets);
        m.push(
            "container_network_receive_packets_dropped_total",
            &i,
            l.rx_dropped,
        );
        m.push("container_network_receive_errors_total", &i, l.rx_errors);
        m.push("container_network_transmit_bytes_total", &i, l.tx_bytes);
        m.push("container_network_transmit_packets_total", &i, l.tx_packets);
        m.push(
            "container_network_transmit_packets_dropped_total",
            &i,
            l.tx_dropped,
        );
        m.push("container_network_transmit_errors_total", &i, l.tx_errors);
    }
}

/// What the container was created with, and when it started.
fn spec_series(m: &mut Series, c: &ContainerRecord, now_secs: u64) {
    let r = &c.spec.resources;
    let positive = |v: i64| u64::try_from(v).ok().filter(|v| *v > 0);
    if let Some(v) = positive(r.cpu_period) {
        m.push("container_spec_cpu_period", &[], v);
    }
    if let Some(v) = positive(r.cpu_quota) {
        m.push("container_spec_cpu_quota", &[], v);
    }
    if let Some(v) = positive(r.cpu_shares) {
        m.push("container_spec_cpu_shares", &[], v);
    }
    m.push(
        "container_spec_memory_limit_bytes",
        &[],
        positive(r.memory_limit_in_bytes).unwrap_or(0),
    );
    if let Some(v) = positive(r.memory_swap_limit_in_bytes) {
        m.push("container_spec_memory_swap_limit_bytes", &[], v);
    }
    if let Ok(started) = u64::try_from(c.started_at) {
        m.push("container_start_time_seconds", &[], started / NS_PER_SEC);
    }
    m.push("container_last_seen", &[], now_secs);
}

fn container_metrics(
    rt: &Runtime,
    pod: &PodRecord,
    c: &ContainerRecord,
    snapshots: &str,
    now_secs: u64,
) -> Option<cri::ContainerMetrics> {
    let reading = rt.container_reading(c)?;
    let mut m = Series::new(pod, &c.spec.name, &c.id, &c.spec.image);
    cgroup_series(&mut m, &reading);
    if let Some((bytes, _)) = rt.writable_layer_usage(c) {
        m.push("container_fs_usage_bytes", &[snapshots], bytes);
    }
    spec_series(&mut m, c, now_secs);
    Some(cri::ContainerMetrics {
        container_id: c.id.clone(),
        metrics: m.out,
    })
}

fn pod_metrics(
    rt: &Runtime,
    pod: &PodRecord,
    snapshots: &str,
    now_secs: u64,
) -> cri::PodSandboxMetrics {
    let mut m = Series::new(pod, "", &pod.id, "");
    if let Some(r) = rt.pod_reading(pod) {
        cgroup_series(&mut m, &r);
    }
    if let Some(n) = rt.pod_network(pod) {
        network_series(&mut m, &n);
    }
    let container_metrics = rt
        .pod_containers(&pod.id)
        .iter()
        .filter(|c| c.state == ContainerState::Running)
        .filter_map(|c| container_metrics(rt, pod, c, snapshots, now_secs))
        .collect();
    cri::PodSandboxMetrics {
        pod_sandbox_id: pod.id.clone(),
        metrics: m.out,
        container_metrics,
    }
}

/// ListPodSandboxMetrics: every ready pod and its running containers.
pub async fn list(
    rt: &Arc<Runtime>,
    snapshots: String,
) -> Result<cri::ListPodSandboxMetricsResponse, Status> {
    let rt = rt.clone();
    blocking("ListPodSandboxMetrics", move || {
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let pod_metrics = rt
            .pods()
            .iter()
            .filter(|p| p.state == PodState::Ready)
            .map(|p| pod_metrics(&rt, p, &snapshots, now_secs))
            .collect();
        cri::ListPodSandboxMetricsResponse { pod_metrics }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crust_daemon::runtime::stats::CgroupStats;

    #[test]
    fn descriptors_are_unique_named_like_cadvisor_and_typed_by_suffix() {
        let mut names: Vec<&str> = DESCRIPTORS.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DESCRIPTORS.len(), "duplicate descriptor");
        for d in DESCRIPTORS {
            assert!(d.name.starts_with("container_"), "{}", d.name);
            // Prometheus convention: counters end in _total (cadvisor's failcnt excepted).
            let total = d.name.ends_with("_total") || d.name == "container_memory_failcnt";
            assert_eq!(total, d.kind == cri::MetricType::Counter, "{}", d.name);
            let keys: Vec<&str> = BASE_LABELS.iter().chain(d.labels).copied().collect();
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                keys.len(),
                "duplicate label key in {}",
                d.name
            );
        }
        let served = descriptors().descriptors;
        let cpu = served
            .iter()
            .find(|d| d.name == "container_cpu_usage_seconds_total")
            .unwrap();
        assert_eq!(
            cpu.label_keys,
            ["pod", "namespace", "container", "id", "image", "cpu"]
        );
    }

    #[test]
    fn every_emitted_metric_matches_its_descriptor() {
        let pod = PodRecord {
            version: 1,
            id: "p1".into(),
            spec: Default::default(),
            state: PodState::Ready,
            created_at: 0,
            ips: vec![],
            netns: None,
            ipcns: None,
            utsns: None,
            dir: "/x".into(),
            cgroup_parent: "/crust/p1".into(),
            shim_address: None,
            pidns: None,
            pod_init_pid: 0,
            cgroup_driver: Default::default(),
            userns: None,
        };
        let mut stats = CgroupStats::default();
        stats.cpu.usage.total = 3_700_000_000;
        stats.memory.usage.usage = 100;
        stats.memory.usage.max = 150;
        stats.memory.swap.limit = 1000;
        stats.memory.swap.usage = 130;
        stats.memory.raw.insert("total_inactive_file".into(), 40);
        stats.memory.raw.insert("pgfault".into(), 2);
        stats.memory.raw.insert("total_pgfault".into(), 9);
        stats
            .blkio
            .io_service_bytes_recursive
            .push(crust_cgroups_entry("Read", 512));
        stats
            .blkio
            .io_serviced_recursive
            .push(crust_cgroups_entry("Write", 3));
        let reading = CgroupReading {
            stats,
            oom_kills: 1,
            processes: 2,
            file_descriptors: 7,
            sockets: 1,
        };
        let mut m = Series::new(&pod, "", "p1", "");
        cgroup_series(&mut m, &reading);
        network_series(
            &mut m,
            &NetworkUsage {
                timestamp: 1,
                interfaces: vec![Default::default()],
            },
        );
        for metric in &m.out {
            let d = descriptor(&metric.name).unwrap();
            assert_eq!(metric.metric_type, d.kind as i32, "{}", metric.name);
            assert_eq!(
                metric.label_values.len(),
                BASE_LABELS.len() + d.labels.len(),
                "{}",
                metric.name
            );
            assert_eq!(metric.timestamp, 0, "live values");
        }
        let value = |name: &str, extra: &[&str]| {
            m.out
                .iter()
                .find(|x| x.name == name && x.label_values[5..] == *extra)
                .and_then(|x| x.value.as_ref())
                .map(|v| v.value)
        };
        assert_eq!(
            value("container_cpu_usage_seconds_total", &["total"]),
            Some(3)
        );
        assert_eq!(value("container_memory_working_set_bytes", &[]), Some(60));
        assert_eq!(value("container_memory_swap", &[]), Some(30));
        assert_eq!(value("container_memory_max_usage_bytes", &[]), Some(150));
        assert_eq!(
            value("container_memory_failures_total", &["pgfault", "container"]),
            Some(2)
        );
        assert_eq!(
            value("container_memory_failures_total", &["pgfault", "hierarchy"]),
            Some(9)
        );
        assert_eq!(value("container_oom_events_total", &[]), Some(1));
        assert_eq!(value("container_processes", &[]), Some(2));
        assert_eq!(value("container_sockets", &[]), Some(1));
        let read = m
            .out
            .iter()
            .find(|x| x.name == "container_fs_reads_bytes_total")
            .unwrap();
        assert_eq!(read.value.as_ref().unwrap().value, 512);
        assert_eq!(
            m.out
                .iter()
                .filter(|x| x.name.starts_with("container_network_"))
                .count(),
            8
        );
        assert_eq!(m.out[0].label_values[..5], ["", "", "", "p1", ""]);
    }

    fn crust_cgroups_entry(op: &str, value: u64) -> crust_cgroups::BlkioEntry {
        crust_cgroups::BlkioEntry {
            major: 7,
            minor: 0,
            op: op.into(),
            value,
        }
    }
}
