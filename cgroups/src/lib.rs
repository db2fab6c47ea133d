//! cgroup v1, v2 and hybrid hierarchies: create, limit, freeze, stats, delete.
//!
//! [`Cgroup`] is one container's cgroup. It is resolved once from `linux.cgroupsPath`
//! ([`Cgroup::new`]) against the host layout (parsed once per process from
//! `/proc/self/mountinfo`), and from then on holds absolute directory paths only, so it can be
//! serialized into a runtime's state file and used by later commands without re-detection.
//!
//! Layouts ([`layout`]): pure v1, pure v2, and hybrid (v1 controllers plus a controller-less
//! cgroup2, joined for membership as runc does). Limits are validated completely before the
//! first write, so bad input changes nothing. The systemd driver ([`Cgroup::new_systemd`],
//! cgroup v2 only, D-Bus with the `systemd` feature) makes the cgroup a transient scope;
//! everything after its start reads and writes the same directory.
//!
//! Device rules follow runc: the list is applied to a "deny all" base (v1: minimal
//! `devices.allow`/`devices.deny` transitions; v2: an eBPF program replacing the previous
//! one). runc appends [`default_allowed_devices`] to the spec's rules; callers that want the
//! same behaviour do that before [`Cgroup::apply`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (resources, pid) = (oci_spec::runtime::LinuxResources::default(), 1);
//! use crust_cgroups::Cgroup;
//! let cg = Cgroup::new(Some("/crust/abc"), "abc")?; // or the spec's linux.cgroupsPath
//! cg.create()?;
//! cg.apply(&resources)?; // validates everything before the first write
//! cg.add_process(pid)?;
//! let state = serde_json::to_string(&cg)?; // keep it; later commands deserialize it
//! let cg: Cgroup = serde_json::from_str(&state)?;
//! cg.freeze()?;
//! cg.thaw()?;
//! println!("{}", serde_json::to_string(&cg.stats()?)?); // `events --stats` data
//! let _oom_kills = cg.oom_kill_count()?;
//! cg.delete()?;
//! # Ok(())
//! # }
//! ```

mod bpf;
mod cgroupfs;
mod devices;
mod freezer;
mod layout;
pub mod mount_flags;
pub mod mountinfo;
mod oom;
mod path;
mod relocate;
mod resources;
mod stats;
mod stats_read;
mod systemd;
mod v1;
mod v2;

#[cfg(test)]
mod fake_tree_stats_tests;
#[cfg(test)]
mod fake_tree_tests;

pub use devices::default_allowed_devices;
pub use path::slice_path;
pub use relocate::leave_caller_cgroup;
pub use stats::*;
pub use systemd::{stop_unit, systemd_running};

/// Whether this host's cgroups are the unified (v2-only) hierarchy, from its mountinfo
/// (false when it cannot be read). Container runtimes give containers their own cgroup
/// namespace on such hosts.
pub fn unified() -> bool {
    matches!(layout::host_layout(), Ok(Layout::V2 { .. }))
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use layout::{Layout, Mount};
use path::Inner;

/// Errors of this crate; every variant names the path or field involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup layout could not be read from mountinfo.
    #[error("detecting cgroup hierarchies from {path}: {reason}")]
    Detect { path: PathBuf, reason: String },
    /// `linux.cgroupsPath` (or the container id used in its place) is unusable.
    #[error("invalid linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// A resource value is out of range or malformed; `field` is its spec path.
    #[error("invalid {field}: {reason}")]
    InvalidResource { field: String, reason: String },
    /// A resource cannot be applied on this cgroup version or host.
    #[error("{field} is not supported: {reason}")]
    Unsupported { field: String, reason: &'static str },
    /// The container's cgroup does not exist (deleted, or never created).
    #[error("cgroup {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// The freezer did not reach FROZEN in time (the cgroup was thawed again).
    #[error("freezing {path}: state still {state:?} after {waited_ms} ms")]
    FreezeTimeout {
        path: PathBuf,
        state: String,
        waited_ms: u64,
    },
    /// Setting up OOM notification failed.
    #[error("registering for OOM events on {path}")]
    OomEvent {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Neither a v1 freezer nor cgroup.freeze is available.
    #[error("no freezer for cgroup {path}")]
    NoFreezer { path: PathBuf },
    /// The kernel refused the device-filter BPF program (`log` is the verifier log).
    #[error("loading the device filter BPF program for {path}: {log}")]
    BpfLoad {
        path: PathBuf,
        log: String,
        #[source]
        source: std::io::Error,
    },
    /// A call to systemd (D-Bus) failed, or its job did not finish as asked.
    #[error("{op} systemd unit {unit}: {reason}")]
    Systemd {
        unit: String,
        op: &'static str,
        reason: String,
    },
    /// Attaching, querying or detaching device-filter programs failed.
    #[error("{op} device filter BPF program on {path}")]
    BpfAttach {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One cgroup directory and the mount of the hierarchy it lives in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Dir {
    mount: PathBuf,
    dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "version")]
enum Hierarchy {
    /// Controller (or `name=…` hierarchy) → directory; co-mounted controllers share one.
    /// `unified` is the hybrid layout's cgroup2 directory (membership only).
    #[serde(rename = "v1")]
    V1 {
        controllers: BTreeMap<String, Dir>,
        unified: Option<Dir>,
    },
    #[serde(rename = "v2")]
    V2 { dir: Dir },
}

/// One container's cgroup on this host: v1 (one dir per mounted controller), v2 (unified),
/// or the hybrid layout (v1 controllers + a cgroup2 at /sys/fs/cgroup/unified).
/// Serialize/Deserialize so crust-runc can keep it in its state file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    /// The resolved path inside the hierarchies (absolute, informational).
    path: String,
    hierarchy: Hierarchy,
    /// systemd driver: the transient unit that owns the directory ([`systemd`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<systemd::Unit>,
}

/// One hierarchy directory of a [`Cgroup`] (see [`Cgroup::hierarchies`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierarchyDir {
    /// v1: the controllers of this hierarchy, comma separated as in its mount options
    /// (`"cpu,cpuacct"`, `"name=systemd"`); v2 and the hybrid cgroup2: empty.
    pub controllers: String,
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// The container's directory in it.
    pub dir: PathBuf,
}

impl Cgroup {
    /// Resolves `linux.cgroupsPath` as runc does (absolute; relative = under the caller's own
    /// cgroup; None = default path from the container id) on the host's hierarchy.
    pub fn new(cgroups_path: Option<&str>, container_id: &str) -> Result<Self, CgroupError> {
        let inner = path::resolve(cgroups_path, container_id)?;
        Self::build(Path::new("/"), layout::host_layout()?, &inner)
    }

    /// Same, on a fake cgroupfs tree rooted at `fs_root` (tests): the layout is read from
    /// `<fs_root>/proc/self/mountinfo`, the caller's cgroup from `<fs_root>/proc/self/cgroup`,
    /// and mount points are taken relative to `fs_root`.
    pub fn with_root(
        fs_root: &Path,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Self, CgroupError> {
        let inner = path::resolve(cgroups_path, container_id)?;
        Self::build(fs_root, &layout::detect(fs_root)?, &inner)
    }

    fn build(fs_root: &Path, layout: &Layout, inner: &Inner) -> Result<Self, CgroupError> {
        let own = match inner {
            Inner::Relative(_) => layout::own_cgroups(fs_root)?,
            Inner::Absolute(_) => layout::OwnCgroups::default(),
        };
        // The directory for `inner` in mount `m`, where the caller sits at `own_path`.
        let place = |m: &Mount, own_path: Option<&str>| -> (PathBuf, String) {
            let full = match inner {
                Inner::Absolute(p) => p.clone(),
                Inner::Relative(r) => {
                    let own_path = own_path.unwrap_or("/");
                    let rel = own_path
                        .strip_prefix(m.root.trim_end_matches('/'))
                        .unwrap_or("/");
                    format!("{}/{r}", rel.trim_end_matches('/'))
                }
            };
            (m.mount_point.join(full.trim_start_matches('/')), full)
        };
        let mut shown = String::new();
        let hierarchy = match layout {
            Layout::V2 { mount } => {
                // runc's fs2 driver: relative paths go under the *parent* of the caller's
                // cgroup (the caller's own cgroup has processes, so no controllers below it).
                let parent = own.v2.as_deref().map(|p| match p.rsplit_once('/') {
                    Some((a, _)) if !a.is_empty() => a.to_string(),
                    _ => "/".to_string(),
                });
                let (dir, full) = place(mount, parent.as_deref());
                shown = full;
                Hierarchy::V2 {
                    dir: Dir {
                        mount: mount.mount_point.clone(),
                        dir,
                    },
                }
            }
            Layout::V1 { mounts, unified } => {
                let mut controllers = BTreeMap::new();
                for (c, m) in mounts {
                    let (dir, full) = place(m, own.v1.get(c).map(String::as_str));
                    if shown.is_empty() || c == "memory" {
                        shown = full;
                    }
                    controllers.insert(
                        c.clone(),
                        Dir {
                            mount: m.mount_point.clone(),
                            dir,
                        },
                    );
                }
                let unified = unified.as_ref().map(|m| Dir {
                    mount: m.mount_point.clone(),
                    dir: place(m, own.v2.as_deref()).0,
                });
                Hierarchy::V1 {
                    controllers,
                    unified,
                }
            }
        };
        Ok(Cgroup {
            path: shown,
            hierarchy,
            systemd: None,
        })
    }

    /// The cgroup process `pid` is in now, read from `/proc/<pid>/cgroup` on the host layout.
    /// Each hierarchy's directory is the one the process sits in there (v1 controllers may
    /// differ). For a process this crate did not place, e.g. a container a shim finds by pid.
    pub fn of_pid(pid: i32) -> Result<Self, CgroupError> {
        let own = layout::cgroups_in(Path::new(&format!("/proc/{pid}/cgroup")))?;
        Self::of_process(layout::host_layout()?, &own)
    }

    /// Same as [`Cgroup::of_pid`], on a fake tree rooted at `fs_root` (tests): the layout from
    /// `<fs_root>/proc/self/mountinfo`, the process's cgroups from `<fs_root>/proc/self/cgroup`.
    pub fn of_process_with_root(fs_root: &Path) -> Result<Self, CgroupError> {
        Self::of_process(&layout::detect(fs_root)?, &layout::own_cgroups(fs_root)?)
    }

    fn of_process(layout: &Layout, own: &layout::OwnCgroups) -> Result<Self, CgroupError> {
        // The directory of cgroup `p` (a path inside the hierarchy) in mount `m`.
        let at = |m: &Mount, p: &str| Dir {
            mount: m.mount_point.clone(),
            dir: m.mount_point.join(
                p.strip_prefix(m.root.trim_end_matches('/'))
                    .unwrap_or(p)
                    .trim_start_matches('/'),
            ),
        };
        let mut shown = String::new();
        let hierarchy = match layout {
            Layout::V2 { mount } => {
                let p = own.v2.as_deref().ok_or_else(|| CgroupError::Detect {
                    path: PathBuf::from("/proc/<pid>/cgroup"),
                    reason: "no cgroup2 entry (0::)".to_string(),
                })?;
                shown = p.to_string();
                Hierarchy::V2 { dir: at(mount, p) }
            }
            Layout::V1 { mounts, unified } => {
                let mut controllers = BTreeMap::new();
                for (c, m) in mounts {
                    let Some(p) = own.v1.get(c) else { continue };
                    if shown.is_empty() || c == "memory" {
                        shown = p.clone();
                    }
                    controllers.insert(c.clone(), at(m, p));
                }
                let unified = match (unified, own.v2.as_deref()) {
                    (Some(m), Some(p)) => Some(at(m, p)),
                    _ => None,
                };
                Hierarchy::V1 {
                    controllers,
                    unified,
                }
            }
        };
        Ok(Cgroup {
            path: shown,
            hierarchy,
            systemd: None,
        })
    }

    /// The container's directory in the memory hierarchy (v2: its one directory), where the
    /// OOM counters live; None on a v1 host without a memory controller.
    pub fn memory_dir(&self) -> Option<&Path> {
        match &self.hierarchy {
            Hierarchy::V2 { dir } => Some(&dir.dir),
            Hierarchy::V1 { controllers, .. } => controllers.get("memory").map(|d| d.dir.as_path()),
        }
    }

    /// The container's path inside the hierarchies, e.g. `/kubepods/pod1/abc`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this is the pure v2 (unified) layout.
    pub fn is_v2(&self) -> bool {
        matches!(self.hierarchy, Hierarchy::V2 { .. })
    }

    /// Every hierarchy directory of this cgroup (one per v1 mount, plus the cgroup2 one), for
    /// callers that bind-mount them into the container or inspect them.
    pub fn hierarchies(&self) -> Vec<HierarchyDir> {
        match &self.hierarchy {
            Hierarchy::V2 { dir } => vec![HierarchyDir {
                controllers: String::new(),
                mount_point: dir.mount.clone(),
                dir: dir.dir.clone(),
            }],
            Hierarchy::V1 {
                controllers,
                unified,
            } => {
                let mut out: Vec<HierarchyDir> = Vec::new();
                for (c, d) in controllers {
                    if let Some(h) = out.iter_mut().find(|h| h.dir == d.dir) {
                        h.controllers.push(',');
                        h.controllers.push_str(c);
                    } else {
                        out.push(HierarchyDir {
                            controllers: c.clone(),
                            mount_point: d.mount.clone(),
                            dir: d.dir.clone(),
                        });
                    }
                }
                out.extend(unified.iter().map(|d| HierarchyDir {
                    controllers: String::new(),
                    mount_point: d.mount.clone(),
                    dir: d.dir.clone(),
                }));
                out
            }
        }
    }

    /// Distinct directories of every hierarchy (v1 mounts, and the hybrid cgroup2).
    fn dirs(&self) -> Vec<&Dir> {
        let mut out: Vec<&Dir> = Vec::new();
        match &self.hierarchy {
            Hierarchy::V2 { dir } => out.push(dir),
            Hierarchy::V1 {
                controllers,
                unified,
            } => {
                for d in controllers.values() {
                    if !out.iter().any(|o| o.dir == d.dir) {
                        out.push(d);
                    }
                }
                out.extend(unified.iter());
            }
        }
        out
    }

    /// Creates the directories on every hierarchy (v1 cpuset: parents get cpus/mems copied
    /// from their parent when empty; v2: controllers enabled down to the parent). systemd
    /// driver: nothing (systemd makes the scope in [`Cgroup::start_scope`]).
    pub fn create(&self) -> Result<(), CgroupError> {
        if self.systemd.is_some() {
            return Ok(());
        }
        match &self.hierarchy {
            Hierarchy::V2 { dir } => v2::create(&dir.mount, &dir.dir),
            Hierarchy::V1 { controllers, .. } => {
                let cpuset = controllers.get("cpuset");
                for d in self.dirs() {
                    if cpuset.is_some_and(|c| c.dir == d.dir) {
                        v1::create_cpuset(&d.mount, &d.dir)?;
                    } else {
                        cgroupfs::mkdir_all(&d.dir)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Validates and writes limits (used by create and `update`). Everything is validated
    /// before the first write. systemd driver: the unit's properties are set first.
    pub fn apply(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        resources::validate(resources, self.is_v2())?;
        self.systemd_set(resources)?;
        match &self.hierarchy {
            Hierarchy::V2 { dir } => v2::apply(&dir.dir, resources),
            Hierarchy::V1 { controllers, .. } => {
                let dirs: BTreeMap<&str, &Path> = controllers
                    .iter()
                    .map(|(c, d)| (c.as_str(), d.dir.as_path()))
                    .collect();
                v1::apply(&dirs, resources)
            }
        }
    }

    /// Moves `pid` into the cgroup on every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            return Err(CgroupError::InvalidResource {
                field: "pid".into(),
                reason: format!("{pid} is not a process id"),
            });
        }
        let s = pid.to_string();
        for d in self.dirs() {
            cgroupfs::write(&d.dir, "cgroup.procs", &s)?;
        }
        Ok(())
    }

    /// The directory used to list processes: v2 dir, or a v1 controller every task is in.
    fn procs_dir(&self) -> Option<&Path> {
        match &self.hierarchy {
            Hierarchy::V2 { dir } => Some(&dir.dir),
            Hierarchy::V1 {
                controllers,
                unified,
            } => ["pids", "freezer", "devices", "memory", "cpu"]
                .iter()
                .find_map(|c| controllers.get(*c))
                .or_else(|| controllers.values().next())
                .or(unified.as_ref())
                .map(|d| d.dir.as_path()),
        }
    }

    /// Pids of every process in the cgroup and the cgroups below it (what `ps` and
    /// `kill --all` need).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        if !dir.exists() {
            return Err(CgroupError::NotFound {
                path: dir.to_path_buf(),
            });
        }
        let mut out = Vec::new();
        cgroupfs::read_pids_recursive(dir, &mut out)?;
        Ok(out)
    }

    /// The freezer this cgroup uses: v1 freezer controller, else cgroup.freeze of the v2 or
    /// hybrid cgroup2 directory.
    fn freezer(&self) -> Result<freezer::Freezer<'_>, CgroupError> {
        match &self.hierarchy {
            Hierarchy::V2 { dir } => Ok(freezer::Freezer::V2(&dir.dir)),
            Hierarchy::V1 {
                controllers,
                unified,
            } => {
                if let Some(d) = controllers.get("freezer") {
                    return Ok(freezer::Freezer::V1(&d.dir));
                }
                match unified {
                    Some(u) if cgroupfs::exists(&u.dir, "cgroup.freeze") => {
                        Ok(freezer::Freezer::V2(&u.dir))
                    }
                    _ => Err(CgroupError::NoFreezer {
                        path: PathBuf::from(&self.path),
                    }),
                }
            }
        }
    }

    /// Freezes every task of the cgroup and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.freezer()?.freeze()
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.freezer()?.thaw()
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        self.freezer()?.is_frozen()
    }

    /// Stats shaped like runc's `events --stats` "data" object (cpu, memory, pids, blkio, hugetlb).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        // Missing interface files read as zero, so a deleted cgroup must be caught here.
        if let Some(dir) = self.procs_dir().filter(|d| !d.exists()) {
            return Err(CgroupError::NotFound {
                path: dir.to_path_buf(),
            });
        }
        match &self.hierarchy {
            Hierarchy::V2 { dir } => stats_read::v2(&dir.dir),
            Hierarchy::V1 { controllers, .. } => {
                let dirs: BTreeMap<&str, &Path> = controllers
                    .iter()
                    .map(|(c, d)| (c.as_str(), d.dir.as_path()))
                    .collect();
                stats_read::v1(&dirs)
            }
        }
    }

    /// Cumulative CPU time of the cgroup and its descendants in nanoseconds, read from one
    /// file (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`): what a rate sampler needs, at a
    /// fraction of [`Cgroup::stats`]'s cost. 0 on a v1 host without a cpuacct hierarchy.
    pub fn cpu_usage(&self) -> Result<u64, CgroupError> {
        let dir = match &self.hierarchy {
            Hierarchy::V2 { dir } => &dir.dir,
            Hierarchy::V1 { controllers, .. } => match controllers.get("cpuacct") {
                Some(d) => &d.dir,
                None => return Ok(0),
            },
        };
        // Missing interface files read as zero, so a deleted cgroup must be caught here.
        if !dir.exists() {
            return Err(CgroupError::NotFound { path: dir.clone() });
        }
        match &self.hierarchy {
            Hierarchy::V2 { .. } => stats_read::cpu_usage_v2(dir),
            Hierarchy::V1 { .. } => stats_read::cpu_usage_v1(dir),
        }
    }

    /// OOM kills recorded for this cgroup (v1 memory.oom_control oom_kill, v2 memory.events).
    /// 0 when the host has no memory controller for it (nothing can be OOM-killed by a cgroup
    /// limit then).
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let (dir, file) = match &self.hierarchy {
            Hierarchy::V2 { dir } => (&dir.dir, "memory.events"),
            Hierarchy::V1 { controllers, .. } => match controllers.get("memory") {
                Some(d) => (&d.dir, "memory.oom_control"),
                None => return Ok(0),
            },
        };
        if !dir.exists() {
            return Err(CgroupError::NotFound { path: dir.clone() });
        }
        Ok(cgroupfs::read_keyed(dir, file, "oom_kill")?.unwrap_or(0))
    }

    /// cgroup v2: the parent directory of this cgroup and its `oom_kill` count, which counts
    /// the kills in its whole subtree, this cgroup's included (None on v1). What tells an
    /// OOM kill in a cgroup that is already gone (systemd removes a scope with its last
    /// process, and `memory.events` with it).
    pub fn parent_oom_kill_count(&self) -> Result<Option<(PathBuf, u64)>, CgroupError> {
        let Hierarchy::V2 { dir } = &self.hierarchy else {
            return Ok(None);
        };
        let Some(parent) = dir.dir.parent().filter(|p| p.starts_with(&dir.mount)) else {
            return Ok(None);
        };
        if !parent.exists() {
            return Err(CgroupError::NotFound {
                path: parent.to_path_buf(),
            });
        }
        let n = cgroupfs::read_keyed(parent, "memory.events", "oom_kill")?.unwrap_or(0);
        Ok(Some((parent.to_path_buf(), n)))
    }

    /// The memory event counters as the kernel names them: v2 `memory.events` (`oom`,
    /// `oom_kill`, `max`, `high`, `low`), v1 `memory.oom_control` (`oom_kill_disable`,
    /// `under_oom`, `oom_kill`). Empty on a v1 host without a memory controller.
    pub fn memory_events(&self) -> Result<BTreeMap<String, u64>, CgroupError> {
        let (dir, file) = match &self.hierarchy {
            Hierarchy::V2 { dir } => (&dir.dir, "memory.events"),
            Hierarchy::V1 { controllers, .. } => match controllers.get("memory") {
                Some(d) => (&d.dir, "memory.oom_control"),
                None => return Ok(BTreeMap::new()),
            },
        };
        if !dir.exists() {
            return Err(CgroupError::NotFound { path: dir.clone() });
        }
        stats_read::keyed(dir, file)
    }

    /// A file descriptor that becomes readable when the kernel reports a memory event for
    /// this cgroup (v1: eventfd on memory.oom_control; v2: inotify on memory.events). Drain it
    /// and compare [`Cgroup::oom_kill_count`] with the last value; close it to unregister.
    /// The fd is non-blocking and close-on-exec.
    pub fn oom_event_fd(&self) -> Result<std::os::fd::OwnedFd, CgroupError> {
        match &self.hierarchy {
            Hierarchy::V2 { dir } => oom::v2_inotify(&dir.dir),
            Hierarchy::V1 { controllers, .. } => match controllers.get("memory") {
                Some(d) => oom::v1_eventfd(&d.dir),
                None => Err(CgroupError::OomEvent {
                    path: PathBuf::from(&self.path),
                    source: std::io::Error::from_raw_os_error(libc::ENOENT),
                }),
            },
        }
    }

    /// Removes the container's directory on every hierarchy, with any cgroups created below
    /// it, leaf first (retrying briefly while tasks exit). Missing directories are fine.
    /// Parent directories are left alone: they may be shared (a pod's cgroup). A frozen
    /// cgroup is thawed first, since killed tasks cannot exit while frozen. systemd driver:
    /// the unit is stopped first (systemd removes its directory).
    pub fn delete(&self) -> Result<(), CgroupError> {
        if let Ok(f) = self.freezer() {
            if f.is_frozen().unwrap_or(false) {
                let _ = f.thaw();
            }
        }
        let mut first = self.systemd_stop().err();
        for d in self.dirs() {
            if let Err(e) = cgroupfs::remove_tree(&d.dir) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
