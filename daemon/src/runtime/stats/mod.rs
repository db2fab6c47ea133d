//! Container and pod resource usage for the CRI's stats and metrics calls, read through
//! crust-cgroups on whatever layout the host has (v1, v2 or hybrid): a container's own
//! cgroup, the pod's cgroup (its cgroup parent, which holds all its containers, as containerd
//! reads it), the writable layer's usage, the processes of the pod, and the traffic counters
//! of its network namespace. CPU rates come from the shared sample history of [`cpu`].
//!
//! Everything here blocks (cgroupfs reads, a walk of the writable layer, a netlink dump on a
//! thread inside the pod's namespace): call it off the async workers. Nothing here fails a
//! stats call: what cannot be read is logged and reported as unknown or zero.

mod cpu;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crust_cgroups::{Cgroup, CgroupError};

pub use cpu::{pod_key, spawn_sampler, CpuHistory, Sampler, MIN_WINDOW, SAMPLE_INTERVAL};
/// A cgroup's counters as crust-cgroups reads them (runc's `events --stats` shape).
pub use crust_cgroups::Stats as CgroupStats;

use super::error::Result;
use super::types::{
    ContainerRecord, ContainerState, ContainerUsage, NetworkUsage, PodRecord, PodState, PodUsage,
};
use super::{now, Runtime};
use crate::network::link_stats;
use crate::snapshots::Snapshotter as _;

/// The cgroupfs path of `pod`'s cgroup: its cgroup parent, absolute as its containers'
/// paths are built (a slice expanded, with the systemd driver); `None` when that is the
/// root (never read the whole host as a pod).
pub fn pod_cgroup_path(pod: &PodRecord) -> Option<String> {
    crate::runtime::cgroup::pod_dir(pod.cgroup_driver, &pod.cgroup_parent)
}

/// Everything the metrics read from one cgroup at once: its stats, OOM kills, and the
/// processes in it with their open files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupReading {
    /// The counters.
    pub stats: CgroupStats,
    /// OOM kills the kernel recorded for the cgroup.
    pub oom_kills: u64,
    /// Processes in the cgroup and below.
    pub processes: u64,
    /// Open file descriptors of those processes.
    pub file_descriptors: u64,
    /// Of which sockets.
    pub sockets: u64,
}

/// Open descriptors and sockets of process `pid` (0, 0 when it is gone).
fn open_files(pid: i32) -> (u64, u64) {
    let dir = std::path::PathBuf::from(format!("/proc/{pid}/fd"));
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return (0, 0);
    };
    let (mut fds, mut sockets) = (0, 0);
    for e in rd.flatten() {
        fds += 1;
        if std::fs::read_link(e.path())
            .is_ok_and(|t| t.as_os_str().as_encoded_bytes().starts_with(b"socket:"))
        {
            sockets += 1;
        }
    }
    (fds, sockets)
}

/// Reads `cg` for the metrics; `None` when it is gone.
fn reading(what: &str, id: &str, cg: &Cgroup) -> Option<CgroupReading> {
    let stats = read_stats(what, id, cg)?;
    let oom_kills = cg.oom_kill_count().unwrap_or_else(|e| {
        tracing::debug!(%what, %id, error = %e, "read OOM kills");
        0
    });
    let pids = cg.pids().unwrap_or_default();
    let (mut file_descriptors, mut sockets) = (0, 0);
    for pid in &pids {
        let (f, s) = open_files(*pid);
        file_descriptors += f;
        sockets += s;
    }
    Some(CgroupReading {
        stats,
        oom_kills,
        processes: pids.len() as u64,
        file_descriptors,
        sockets,
    })
}

/// CPU and memory of one cgroup's stats, with `timestamp`.
fn usage_from(s: &CgroupStats, timestamp: i64) -> ContainerUsage {
    let m = &s.memory;
    let working_set = m.working_set();
    ContainerUsage {
        timestamp,
        cpu_ns: s.cpu.usage.total,
        cpu_nano_cores: None,
        memory_working_set: working_set,
        memory_usage: m.usage.usage,
        memory_available: m.limit().map(|l| l.saturating_sub(working_set)),
        memory_rss: m.rss(),
        page_faults: m.stat("pgfault"),
        major_page_faults: m.stat("pgmajfault"),
        swap_usage: m.swap_usage(),
        fs_bytes: 0,
        fs_inodes: 0,
    }
}

/// Reads `cg`'s stats; a cgroup that is gone (its tasks just exited) is `None` quietly,
/// anything else is logged.
fn read_stats(what: &str, id: &str, cg: &Cgroup) -> Option<CgroupStats> {
    match cg.stats() {
        Ok(s) => Some(s),
        Err(CgroupError::NotFound { .. }) => None,
        Err(e) => {
            tracing::warn!(%what, %id, error = %e, "read cgroup stats");
            None
        }
    }
}

/// Resolves cgroup `path` on the host's layout, logging failures.
fn cgroup(what: &str, id: &str, path: &str) -> Option<Cgroup> {
    match Cgroup::new(Some(path), id) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(%what, %id, cgroup = path, error = %e, "resolve cgroup");
            None
        }
    }
}

impl Runtime {
    /// The cgroup stats of container `rec` while it runs (`None` otherwise).
    pub fn container_cgroup_stats(&self, rec: &ContainerRecord) -> Option<CgroupStats> {
        if rec.state != ContainerState::Running {
            return None;
        }
        let cg = cgroup("container", &rec.id, &rec.cgroup_path)?;
        read_stats("container", &rec.id, &cg)
    }

    /// What the metrics read from container `rec`'s cgroup while it runs.
    pub fn container_reading(&self, rec: &ContainerRecord) -> Option<CgroupReading> {
        if rec.state != ContainerState::Running {
            return None;
        }
        reading(
            "container",
            &rec.id,
            &cgroup("container", &rec.id, &rec.cgroup_path)?,
        )
    }

    /// What the metrics read from `pod`'s cgroup (`None` when it has no cgroup of its own or
    /// it does not exist yet: nothing has run in the pod).
    pub fn pod_reading(&self, pod: &PodRecord) -> Option<CgroupReading> {
        reading(
            "pod",
            &pod.id,
            &cgroup("pod", &pod.id, &pod_cgroup_path(pod)?)?,
        )
    }

    /// Usage of container `rec`: its cgroup while it runs (zero otherwise), its writable
    /// layer, and its CPU rate from the shared history.
    pub fn container_usage(&self, rec: &ContainerRecord) -> ContainerUsage {
        let stats = self.container_cgroup_stats(rec);
        let read_at = Instant::now();
        let mut u = match &stats {
            Some(s) => usage_from(s, now()),
            None => ContainerUsage {
                timestamp: now(),
                ..Default::default()
            },
        };
        if stats.is_some() {
            u.cpu_nano_cores = self.cpu.observe(&rec.id, read_at, u.cpu_ns);
        }
        if let Some((bytes, inodes)) = self.writable_layer_usage(rec) {
            u.fs_bytes = bytes;
            u.fs_inodes = inodes;
        }
        u
    }

    /// Bytes and inodes used by container `rec`'s writable layer (`None`, logged, when it
    /// cannot be measured).
    pub fn writable_layer_usage(&self, rec: &ContainerRecord) -> Option<(u64, u64)> {
        match self.images.snapshotter().usage(&rec.snapshot) {
            Ok(f) => Some((f.bytes, f.inodes)),
            Err(e) => {
                tracing::debug!(container = %rec.id, error = %e, "writable layer usage");
                None
            }
        }
    }

    /// Usage of container `id`.
    pub fn container_stats(&self, id: &str) -> Result<(ContainerRecord, ContainerUsage)> {
        let rec = self.container(id)?;
        let u = self.container_usage(&rec);
        Ok((rec, u))
    }

    /// Usage of `pod`: its cgroup (the sum of its containers when it has none), its process
    /// count, its network and each of its containers.
    pub fn pod_usage(&self, pod: &PodRecord) -> PodUsage {
        let containers: Vec<(ContainerRecord, ContainerUsage)> = self
            .pod_containers(&pod.id)
            .into_iter()
            .map(|c| {
                let u = self.container_usage(&c);
                (c, u)
            })
            .collect();
        let cg = pod_cgroup_path(pod).and_then(|p| cgroup("pod", &pod.id, &p));
        let stats = cg.as_ref().and_then(|cg| read_stats("pod", &pod.id, cg));
        let read_at = Instant::now();
        let usage = match &stats {
            Some(s) => {
                let mut u = usage_from(s, now());
                u.cpu_nano_cores = self.cpu.observe(&pod_key(&pod.id), read_at, u.cpu_ns);
                u
            }
            None => {
                // No pod cgroup to read: nothing has run yet, or the parent is the root.
                let mut u = ContainerUsage {
                    timestamp: now(),
                    ..Default::default()
                };
                for (_, c) in &containers {
                    u.cpu_ns += c.cpu_ns;
                    u.memory_usage += c.memory_usage;
                    u.memory_working_set += c.memory_working_set;
                    u.memory_rss += c.memory_rss;
                    u.page_faults += c.page_faults;
                    u.major_page_faults += c.major_page_faults;
                }
                u
            }
        };
        let process_count = match cg.as_ref().map(Cgroup::pids) {
            Some(Ok(p)) => Some(p.len() as u64),
            Some(Err(CgroupError::NotFound { .. })) => Some(0),
            Some(Err(e)) => {
                tracing::warn!(pod = %pod.id, error = %e, "count the pod's processes");
                None
            }
            None => None,
        };
        PodUsage {
            usage,
            process_count,
            network: self.pod_network(pod),
            containers,
        }
    }

    /// Traffic counters of `pod`'s network namespace, `None` with the host network, when
    /// the pod is not ready, or when it has no interface but loopback (kubelet requires a
    /// default interface in every network usage it is given).
    pub fn pod_network(&self, pod: &PodRecord) -> Option<NetworkUsage> {
        if pod.state != PodState::Ready {
            return None;
        }
        let ns = pod.netns.as_ref()?;
        match link_stats::read(ns) {
            Ok(interfaces) if !interfaces.is_empty() => Some(NetworkUsage {
                timestamp: now(),
                interfaces,
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(pod = %pod.id, error = %e, "read the pod's network counters");
                None
            }
        }
    }

    /// One round of the background sampler: the cumulative CPU time of every running
    /// container and ready pod into the history. `cgroups` caches each one's resolved cgroup
    /// between rounds (entries of containers and pods that are gone are dropped).
    pub(super) fn sample_cpu(&self, cgroups: &mut HashMap<String, Cgroup>) {
        let targets: Vec<(String, String)> = {
            let st = self.lock();
            let containers = st
                .containers
                .values()
                .filter(|c| c.state == ContainerState::Running)
                .map(|c| (c.id.clone(), c.cgroup_path.clone()));
            let pods = st
                .pods
                .values()
                .filter(|p| p.state == PodState::Ready)
                .filter_map(|p| Some((pod_key(&p.id), pod_cgroup_path(p)?)));
            containers.chain(pods).collect()
        };
        let live: HashSet<&str> = targets.iter().map(|(k, _)| k.as_str()).collect();
        cgroups.retain(|k, _| live.contains(k.as_str()));
        for (key, path) in &targets {
            let cg = match cgroups.get(key) {
                Some(cg) => cg,
                None => match Cgroup::new(Some(path), key) {
                    Ok(cg) => cgroups.entry(key.clone()).or_insert(cg),
                    Err(_) => continue,
                },
            };
            // A cgroup not created yet or just removed has nothing to sample.
            if let Ok(ns) = cg.cpu_usage() {
                self.cpu.observe(key, Instant::now(), ns);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pod(parent: &str) -> PodRecord {
        PodRecord {
            version: 1,
            id: "p".into(),
            spec: Default::default(),
            state: PodState::Ready,
            created_at: 0,
            ips: vec![],
            netns: None,
            ipcns: None,
            utsns: None,
            dir: "/x".into(),
            cgroup_parent: parent.into(),
            shim_address: None,
            pidns: None,
            pod_init_pid: 0,
            cgroup_driver: Default::default(),
            userns: None,
        }
    }

    #[test]
    fn pod_cgroup_is_the_parent_made_absolute_never_the_root() {
        assert_eq!(
            pod_cgroup_path(&pod("/crust/p")).as_deref(),
            Some("/crust/p")
        );
        assert_eq!(
            pod_cgroup_path(&pod("kubepods/besteffort/podu/")).as_deref(),
            Some("/kubepods/besteffort/podu")
        );
        assert_eq!(pod_cgroup_path(&pod("/")), None);
        assert_eq!(pod_cgroup_path(&pod("")), None);
        let mut p = pod("kubepods-besteffort-podu.slice");
        p.cgroup_driver = crate::runtime::cgroup::CgroupDriver::Systemd;
        assert_eq!(
            pod_cgroup_path(&p).as_deref(),
            Some("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu.slice")
        );
    }

    /// Writes `files` (name, content) into `dir`.
    fn populate(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
    }

    /// The CRI usage of a v2 cgroup, checked against the files it was read from.
    #[test]
    fn usage_from_v2_files() {
        let t = tempfile::tempdir().unwrap();
        populate(
            &t.path().join("proc/self"),
            &[
                (
                    "mountinfo",
                    "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                ),
                ("cgroup", "0::/\n"),
            ],
        );
        populate(
            &t.path().join("sys/fs/cgroup/kubepods/podu/c1"),
            &[
                ("cgroup.procs", "7\n"),
                ("cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n"),
                ("memory.current", "50000\n"),
                ("memory.max", "80000\n"),
                (
                    "memory.stat",
                    "anon 30000\nfile 20000\ninactive_file 15000\npgfault 12\npgmajfault 3\n",
                ),
            ],
        );
        let cg = Cgroup::with_root(t.path(), Some("/kubepods/podu/c1"), "c1").unwrap();
        let u = usage_from(&cg.stats().unwrap(), 42);
        assert_eq!(
            u,
            ContainerUsage {
                timestamp: 42,
                cpu_ns: 1_500_000_000,
                cpu_nano_cores: None,
                memory_working_set: 35_000,
                memory_usage: 50_000,
                memory_available: Some(45_000),
                memory_rss: 30_000,
                page_faults: 12,
                major_page_faults: 3,
                swap_usage: None,
                fs_bytes: 0,
                fs_inodes: 0,
            }
        );
        assert_eq!(cg.cpu_usage().unwrap(), u.cpu_ns);
    }

    /// The same on the hybrid layout (v1 controllers), where a pod cgroup's own memory.stat
    /// keys are not hierarchical.
    #[test]
    fn usage_from_v1_hybrid_pod_files() {
        let t = tempfile::tempdir().unwrap();
        populate(
            &t.path().join("proc/self"),
            &[
                (
                    "mountinfo",
                    "26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                     28 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                     36 25 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
                ),
                ("cgroup", "4:memory:/\n1:cpu,cpuacct:/\n0::/\n"),
            ],
        );
        populate(
            &t.path().join("sys/fs/cgroup/cpu,cpuacct/crust/p"),
            &[("cgroup.procs", ""), ("cpuacct.usage", "2000000000\n")],
        );
        populate(
            &t.path().join("sys/fs/cgroup/memory/crust/p"),
            &[
                ("cgroup.procs", ""),
                ("memory.usage_in_bytes", "10000\n"),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                (
                    "memory.stat",
                    "rss 0\ninactive_file 0\npgfault 0\ntotal_rss 6000\n\
                     total_inactive_file 4000\ntotal_pgfault 5\ntotal_pgmajfault 1\n",
                ),
            ],
        );
        let cg = Cgroup::with_root(t.path(), Some("/crust/p"), "p").unwrap();
        let u = usage_from(&cg.stats().unwrap(), 1);
        assert_eq!(u.cpu_ns, 2_000_000_000);
        assert_eq!((u.memory_usage, u.memory_working_set), (10_000, 6_000));
        assert_eq!(u.memory_available, None, "unlimited");
        assert_eq!(
            (u.memory_rss, u.page_faults, u.major_page_faults),
            (6000, 5, 1)
        );
    }
}
