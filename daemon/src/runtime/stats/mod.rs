//! Container and pod resource usage, read from the cgroup files of the container
//! (cgroup v1 memory/cpuacct controllers, or cgroup v2), and the writable layer's usage.
//! The CPU rate (nanocores) is computed from the previous sample of the same container
//! or pod, kept in memory (the first sample of each reports 0, as containerd does).

use super::error::Result;
use super::types::{ContainerRecord, ContainerState, ContainerUsage};
use super::{now, Runtime};
use crate::snapshots::Snapshotter as _;

fn read(path: String) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn stat_value(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Usage of the cgroup at `path` (cgroupfs path).
pub fn cgroup_usage(path: &str) -> ContainerUsage {
    let rel = path.trim_start_matches('/');
    let mut u = ContainerUsage {
        timestamp: now(),
        ..Default::default()
    };
    if let Some(usage) = read(format!("/sys/fs/cgroup/memory/{rel}/memory.usage_in_bytes")) {
        u.memory_usage = usage.trim().parse().unwrap_or(0);
        let st = read(format!("/sys/fs/cgroup/memory/{rel}/memory.stat")).unwrap_or_default();
        let inactive = stat_value(&st, "total_inactive_file");
        u.memory_working_set = u.memory_usage.saturating_sub(inactive);
        u.memory_rss = stat_value(&st, "total_rss");
        u.page_faults = stat_value(&st, "total_pgfault");
        u.major_page_faults = stat_value(&st, "total_pgmajfault");
        u.cpu_ns = read(format!("/sys/fs/cgroup/cpuacct/{rel}/cpuacct.usage"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
    } else if let Some(cur) = read(format!("/sys/fs/cgroup/{rel}/memory.current")) {
        u.memory_usage = cur.trim().parse().unwrap_or(0);
        let st = read(format!("/sys/fs/cgroup/{rel}/memory.stat")).unwrap_or_default();
        u.memory_working_set = u
            .memory_usage
            .saturating_sub(stat_value(&st, "inactive_file"));
        u.memory_rss = stat_value(&st, "anon");
        u.page_faults = stat_value(&st, "pgfault");
        u.major_page_faults = stat_value(&st, "pgmajfault");
        let cpu = read(format!("/sys/fs/cgroup/{rel}/cpu.stat")).unwrap_or_default();
        u.cpu_ns = stat_value(&cpu, "usage_usec") * 1000;
    }
    u
}

impl Runtime {
    /// Usage of container `rec`.
    pub fn container_usage(&self, rec: &ContainerRecord) -> ContainerUsage {
        let mut u = if rec.state == ContainerState::Running {
            cgroup_usage(&rec.cgroup_path)
        } else {
            ContainerUsage {
                timestamp: now(),
                ..Default::default()
            }
        };
        if let Ok(f) = self.images.snapshotter().usage(&rec.snapshot) {
            u.fs_bytes = f.bytes;
            u.fs_inodes = f.inodes;
        }
        if rec.state == ContainerState::Running {
            u.cpu_nano_cores = self.cpu_rate(&rec.id, u.timestamp, u.cpu_ns);
        }
        u
    }

    /// Nanocores used by `key` between its previous sample and (`at`, `cpu_ns`), which
    /// becomes the new previous sample.
    fn cpu_rate(&self, key: &str, at: i64, cpu_ns: u64) -> u64 {
        let mut samples = self.cpu_samples.lock().unwrap_or_else(|p| p.into_inner());
        let prev = samples.insert(key.to_string(), (at, cpu_ns));
        match prev {
            Some((t0, c0)) if at > t0 && cpu_ns >= c0 => {
                ((cpu_ns - c0) as u128 * 1_000_000_000 / (at - t0) as u128) as u64
            }
            _ => 0,
        }
    }

    /// Forgets the CPU sample of a removed container or pod.
    pub(super) fn forget_cpu_sample(&self, key: &str) {
        self.cpu_samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Usage of container `id`.
    pub fn container_stats(&self, id: &str) -> Result<(ContainerRecord, ContainerUsage)> {
        let rec = self.container(id)?;
        let u = self.container_usage(&rec);
        Ok((rec, u))
    }

    /// Usage of pod `id`: the sum over its running containers.
    pub fn pod_usage(&self, id: &str) -> Result<ContainerUsage> {
        let pod = self.pod(id)?;
        let mut total = ContainerUsage {
            timestamp: now(),
            ..Default::default()
        };
        for c in self.pod_containers(&pod.id) {
            let u = self.container_usage(&c);
            total.cpu_ns += u.cpu_ns;
            total.memory_usage += u.memory_usage;
            total.memory_working_set += u.memory_working_set;
            total.memory_rss += u.memory_rss;
            total.page_faults += u.page_faults;
            total.major_page_faults += u.major_page_faults;
            total.fs_bytes += u.fs_bytes;
            total.fs_inodes += u.fs_inodes;
        }
        total.cpu_nano_cores =
            self.cpu_rate(&format!("pod/{}", pod.id), total.timestamp, total.cpu_ns);
        Ok(total)
    }
}
