//! Moving the calling process out of its caller's cgroups: a shim started by crustd or
//! containerd must not stay in (and be accounted or killed with) its caller's cgroup.

use std::path::Path;

use crate::mountinfo;

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
    for m in cgroup_mounts() {
        if m.root != Path::new("/") {
            continue;
        }
        let dir = match shim_cgroup {
            Some(c) => m.mount_point.join(c.trim_start_matches('/')),
            None => m.mount_point.clone(),
        };
        if shim_cgroup.is_some() {
            let _ = std::fs::create_dir_all(&dir);
            if m.super_options.split(',').any(|o| o == "cpuset") {
                fill_cpuset(&m.mount_point, &dir);
            }
        }
        let procs = dir.join("cgroup.procs");
        if let Err(e) = std::fs::write(&procs, &pid) {
            errors.push(format!("{}: {e}", procs.display()));
        }
    }
    errors
}

/// The cgroup and cgroup2 mounts of the calling thread's mount namespace.
fn cgroup_mounts() -> Vec<mountinfo::MountInfo> {
    let mut v = mountinfo::read_self().unwrap_or_default();
    v.retain(|m| m.fstype == "cgroup" || m.fstype == "cgroup2");
    v
}
