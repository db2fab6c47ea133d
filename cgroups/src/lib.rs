//! cgroup v1, v2 and hybrid hierarchies: create, limit, freeze, stats, delete.
//!
//! First cut: the public API agreed in `briefs/interfaces.md`; bodies land in follow-up commits.

mod stats;

pub use stats::*;

use std::path::{Path, PathBuf};

/// Errors of this crate; every variant names the path or field involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The operation is not implemented yet.
    #[error("cgroups: {0} is not implemented yet")]
    NotImplemented(&'static str),
}

/// One container's cgroup on this host: v1 (one dir per mounted controller), v2 (unified),
/// or the hybrid layout (v1 controllers + a cgroup2 at /sys/fs/cgroup/unified).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    /// Resolved path of the container's cgroup relative to each hierarchy root.
    pub path: PathBuf,
}

impl Cgroup {
    /// Resolves `linux.cgroupsPath` as runc does (absolute; relative = under the caller's own
    /// cgroup; None = default path from the container id) on the host's hierarchy.
    pub fn new(cgroups_path: Option<&str>, container_id: &str) -> Result<Self, CgroupError> {
        Self::with_root(Path::new("/"), cgroups_path, container_id)
    }

    /// Same, on a fake cgroupfs tree rooted at `fs_root` (tests).
    pub fn with_root(
        _fs_root: &Path,
        _cgroups_path: Option<&str>,
        _container_id: &str,
    ) -> Result<Self, CgroupError> {
        Err(CgroupError::NotImplemented("Cgroup::new"))
    }

    /// Creates the directories on every hierarchy.
    pub fn create(&self) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("create"))
    }

    /// Validates and writes limits (used by create and `update`).
    pub fn apply(&self, _resources: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("apply"))
    }

    /// Moves `pid` into the cgroup on every hierarchy.
    pub fn add_process(&self, _pid: i32) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("add_process"))
    }

    /// Pids of the processes in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Err(CgroupError::NotImplemented("pids"))
    }

    /// Freezes every task of the cgroup and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("freeze"))
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("thaw"))
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        Err(CgroupError::NotImplemented("is_frozen"))
    }

    /// Stats shaped like runc's `events --stats` "data" object (cpu, memory, pids, blkio, hugetlb).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        Err(CgroupError::NotImplemented("stats"))
    }

    /// OOM kills recorded for this cgroup (v1 memory.oom_control oom_kill, v2 memory.events).
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Err(CgroupError::NotImplemented("oom_kill_count"))
    }

    /// Removes every directory it created (retrying briefly while tasks exit).
    pub fn delete(&self) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("delete"))
    }
}
