//! A container's cgroup, read directly from cgroupfs: where it is (from
//! `/proc/<pid>/cgroup` and `/proc/self/mountinfo`), its stats for the Stats request, its
//! OOM-kill counter, and moving the shim itself out of its caller's cgroups.
//!
//! Kept to a few files on purpose (the shim must stay small); the workspace's
//! `crust-cgroups` crate owns cgroup management. v1 (including hybrid hosts, where the
//! v1 memory controller wins) and v2 are a closed set: [`Cgroup`].

use std::path::{Path, PathBuf};

use containerd_shim_protos::cgroups::metrics as v1m;
use containerd_shim_protos::cgroups_v2::metrics as v2m;
use protobuf::well_known_types::any::Any;
use protobuf::Message;

/// One process's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    V1 {
        memory: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
    V2(PathBuf),
}

struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    opts: Vec<String>,
}

fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let fstype = (*post.first()?).to_string();
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(Mount {
                root: (*pre.get(3)?).to_string(),
                point: PathBuf::from(pre.get(4)?),
                fstype,
                opts: post.get(2)?.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

fn join(m: &Mount, path: &str) -> PathBuf {
    let rel = path.strip_prefix(m.root.as_str()).unwrap_or(path);
    m.point.join(rel.trim_start_matches('/'))
}

impl Cgroup {
    /// The cgroup of `pid`, or None if it cannot be read (process gone).
    pub fn of_pid(pid: i32) -> Option<Cgroup> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mounts = mounts();
        let v1 = |ctrl: &str| -> Option<PathBuf> {
            let line = text.lines().find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })?;
            let path = line.splitn(3, ':').nth(2)?;
            let m = mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.opts.iter().any(|o| o == ctrl))?;
            Some(join(m, path))
        };
        let memory = v1("memory");
        if memory.is_some() {
            return Some(Cgroup::V1 {
                memory,
                cpuacct: v1("cpuacct"),
                pids: v1("pids"),
            });
        }
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        let m = mounts.iter().find(|m| m.fstype == "cgroup2")?;
        Some(Cgroup::V2(join(m, path)))
    }

    /// Number of OOM kills so far (v1 `memory.oom_control` oom_kill, v2 `memory.events`).
    pub fn oom_kill_count(&self) -> Option<u64> {
        match self {
            Cgroup::V1 {
                memory: Some(m), ..
            } => keyed(&m.join("memory.oom_control"), "oom_kill"),
            Cgroup::V1 { .. } => None,
            Cgroup::V2(p) => keyed(&p.join("memory.events"), "oom_kill"),
        }
    }

    /// The file to watch for OOM notifications.
    pub fn memory_dir(&self) -> Option<&Path> {
        match self {
            Cgroup::V1 { memory, .. } => memory.as_deref(),
            Cgroup::V2(p) => Some(p),
        }
    }

    /// containerd's metrics message for this cgroup, packed as an Any.
    pub fn metrics(&self) -> Any {
        match self {
            Cgroup::V1 {
                memory,
                cpuacct,
                pids,
            } => {
                let mut m = v1m::Metrics::new();
                if let Some(p) = pids {
                    let mut s = v1m::PidsStat::new();
                    s.current = single(&p.join("pids.current")).unwrap_or(0);
                    s.limit = single(&p.join("pids.max")).unwrap_or(0);
                    m.pids = Some(s).into();
                }
                if let Some(c) = cpuacct {
                    let mut u = v1m::CPUUsage::new();
                    u.total = single(&c.join("cpuacct.usage")).unwrap_or(0);
                    u.user = single(&c.join("cpuacct.usage_user")).unwrap_or(0);
                    u.kernel = single(&c.join("cpuacct.usage_sys")).unwrap_or(0);
                    let mut cpu = v1m::CPUStat::new();
                    cpu.usage = Some(u).into();
                    m.cpu = Some(cpu).into();
                }
                if let Some(d) = memory {
                    let mut s = v1m::MemoryStat::new();
                    let stat = |k| keyed(&d.join("memory.stat"), k).unwrap_or(0);
                    s.cache = stat("cache");
                    s.rss = stat("rss");
                    s.mapped_file = stat("mapped_file");
                    s.inactive_file = stat("inactive_file");
                    s.active_file = stat("active_file");
                    s.total_inactive_file = stat("total_inactive_file");
                    s.total_rss = stat("total_rss");
                    s.total_cache = stat("total_cache");
                    s.pg_fault = stat("pgfault");
                    s.pg_maj_fault = stat("pgmajfault");
                    let mut e = v1m::MemoryEntry::new();
                    e.usage = single(&d.join("memory.usage_in_bytes")).unwrap_or(0);
                    e.limit = single(&d.join("memory.limit_in_bytes")).unwrap_or(0);
                    e.max = single(&d.join("memory.max_usage_in_bytes")).unwrap_or(0);
                    e.failcnt = single(&d.join("memory.failcnt")).unwrap_or(0);
                    s.usage = Some(e).into();
                    m.memory = Some(s).into();
                    let mut o = v1m::MemoryOomControl::new();
                    let f = d.join("memory.oom_control");
                    o.oom_kill_disable = keyed(&f, "oom_kill_disable").unwrap_or(0);
                    o.under_oom = keyed(&f, "under_oom").unwrap_or(0);
                    o.oom_kill = keyed(&f, "oom_kill").unwrap_or(0);
                    m.memory_oom_control = Some(o).into();
                }
                pack("io.containerd.cgroups.v1.Metrics", &m)
            }
            Cgroup::V2(d) => {
                let mut m = v2m::Metrics::new();
                let mut pids = v2m::PidsStat::new();
                pids.current = single(&d.join("pids.current")).unwrap_or(0);
                pids.limit = single(&d.join("pids.max")).unwrap_or(0);
                m.pids = Some(pids).into();
                let mut cpu = v2m::CPUStat::new();
                let cs = |k| keyed(&d.join("cpu.stat"), k).unwrap_or(0);
                cpu.usage_usec = cs("usage_usec");
                cpu.user_usec = cs("user_usec");
                cpu.system_usec = cs("system_usec");
                m.cpu = Some(cpu).into();
                let mut mem = v2m::MemoryStat::new();
                let ms = |k| keyed(&d.join("memory.stat"), k).unwrap_or(0);
                mem.anon = ms("anon");
                mem.file = ms("file");
                mem.inactive_file = ms("inactive_file");
                mem.active_file = ms("active_file");
                mem.usage = single(&d.join("memory.current")).unwrap_or(0);
                mem.usage_limit = single(&d.join("memory.max")).unwrap_or(u64::MAX);
                m.memory = Some(mem).into();
                let mut ev = v2m::MemoryEvents::new();
                let me = |k| keyed(&d.join("memory.events"), k).unwrap_or(0);
                ev.oom = me("oom");
                ev.oom_kill = me("oom_kill");
                ev.max = me("max");
                ev.high = me("high");
                m.memory_events = Some(ev).into();
                pack("io.containerd.cgroups.v2.Metrics", &m)
            }
        }
    }
}

/// Packs `m` (type URL written out: see `events::Publisher::send`).
fn pack(type_url: &str, m: &impl Message) -> Any {
    let mut any = Any::new();
    any.type_url = type_url.to_string();
    any.value = m.write_to_bytes().unwrap_or_default();
    any
}

/// A one-number file (`max` reads as u64::MAX).
fn single(p: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(p).ok()?;
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// The value of `key` in a `key value` per line file.
fn keyed(p: &Path, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(p).ok()?;
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A new v1 cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and no process can
/// join it until they are set: copy them down from the parent, level by level, from the
/// mount point to `dir`.
fn fill_cpuset(mount_point: &Path, dir: &Path) {
    let Ok(rel) = dir.strip_prefix(mount_point) else {
        return;
    };
    let mut parent = mount_point.to_path_buf();
    for c in rel.components() {
        let child = parent.join(c);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let empty = std::fs::read_to_string(child.join(f)).is_ok_and(|v| v.trim().is_empty());
            if empty {
                if let Ok(v) = std::fs::read_to_string(parent.join(f)) {
                    let _ = std::fs::write(child.join(f), v.trim());
                }
            }
        }
        parent = child;
    }
}

/// Moves the calling process to the root of every cgroup hierarchy (or, for v1, of
/// `shim_cgroup` when given), so the shim does not live in its caller's cgroup.
/// Failures are returned for logging; they do not stop the shim.
pub fn leave_caller_cgroup(shim_cgroup: Option<&str>) -> Vec<String> {
    let mut errors = Vec::new();
    let pid = std::process::id().to_string();
    for m in mounts() {
        if m.root != "/" {
            continue;
        }
        let dir = match shim_cgroup {
            Some(c) => m.point.join(c.trim_start_matches('/')),
            None => m.point.clone(),
        };
        if shim_cgroup.is_some() {
            let _ = std::fs::create_dir_all(&dir);
            if m.opts.iter().any(|o| o == "cpuset") {
                fill_cpuset(&m.point, &dir);
            }
        }
        let procs = dir.join("cgroup.procs");
        if let Err(e) = std::fs::write(&procs, &pid) {
            errors.push(format!("{}: {e}", procs.display()));
        }
    }
    errors
}
