//! Where pods, pod inits, shims and containers live in the cgroup tree, per cgroup driver
//! (`runtime.cgroup_driver`, which must match kubelet's `cgroupDriver`).
//!
//! - **cgroupfs**: a pod's parent is a cgroupfs path (kubelet: `/kubepods/burstable/pod<uid>`;
//!   none given: `<cgroup_root>/<pod id>`); a container is `<parent>/<container id>`, the
//!   pod init (shared-PID pods) the leaf `<parent>/<pod id>`, which it joins itself; shims
//!   stay in crustd's cgroup.
//! - **systemd**: a pod's parent is a slice (`kubepods-burstable-pod<uid>.slice`, which
//!   systemd nests as `kubepods.slice/kubepods-burstable.slice/…`; kubelet sends it expanded
//!   to that path, taken when it is exactly the slice's nesting; none given:
//!   `<cgroup_root stem>-pod<pod id>.slice`, which crustd stops when the pod is removed). A
//!   container is the scope `crust-<container id>.scope` in that slice, made by the OCI
//!   runtime from `linux.cgroupsPath = "<slice>:crust:<id>"` (runc's `--systemd-cgroup`
//!   form; crustd asks the shim for it with runc's `SystemdCgroup` option). The pod init is
//!   the scope `crust-<pod id>.scope` in the slice (as containerd's pause container is) and
//!   each shim the scope `crust-shim-<pod id>.scope` in `system.slice`, started by crustd
//!   over D-Bus with the process in it: a shim must outlive a `systemctl restart` of
//!   crustd's own unit, and must not count against the pod's memory limit.
//!
//! systemd removes a scope as soon as it has no process left, so nothing may depend on a
//! container's or pod init's scope directory outliving its processes. OOM kills in
//! particular come from the shim's `TaskOOM` (it watches the container's `memory.events`
//! while the cgroup exists; `shim/events.rs`), and otherwise from the container's
//! `memory.events` if it is still there at the exit (`container/start.rs`).

use serde::{Deserialize, Serialize};

use crate::runtime::error::{Result, RuntimeError};

/// Who makes the cgroups of pods and containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// Directories written directly (runc's fs driver).
    #[default]
    Cgroupfs,
    /// Units of systemd (cgroup v2, systemd as init), over its D-Bus API.
    Systemd,
}

/// The prefix of the scopes crust makes (`<prefix>-<id>.scope`), as containerd's
/// `cri-containerd`.
pub const SCOPE_PREFIX: &str = "crust";
/// The prefix of the shims' scopes.
pub const SHIM_SCOPE_PREFIX: &str = "crust-shim";
/// The slice the shims' scopes are placed in.
pub const SHIM_SLICE: &str = "system.slice";

/// Default `runtime.cgroup_root` of the systemd driver.
pub const DEFAULT_SYSTEMD_ROOT: &str = "crust.slice";

/// Whether systemd is this host's init system (what the systemd driver needs).
pub fn systemd_running() -> bool {
    crust_cgroups::systemd_running()
}

/// Checks `runtime.cgroup_root` for `driver`: a cgroupfs path, or a slice for systemd.
pub fn check_root(driver: CgroupDriver, root: &str) -> Result<()> {
    match driver {
        CgroupDriver::Cgroupfs if root.ends_with(".slice") && !root.contains('/') => {
            Err(RuntimeError::Invalid(format!(
                "runtime.cgroup_root {root:?} is a systemd slice, but cgroup_driver is \"cgroupfs\""
            )))
        }
        CgroupDriver::Cgroupfs => Ok(()),
        CgroupDriver::Systemd => crust_cgroups::slice_path(root).map(|_| ()).ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "runtime.cgroup_root {root:?} must be a systemd slice name such as \"crust.slice\" with cgroup_driver = \"systemd\""
            ))
        }),
    }
}

/// The cgroup parent of a new pod `pod_id` whose sandbox config asked for `asked` (empty:
/// crustd's own under `root`). A parent of the other driver's form is refused: kubelet
/// and crustd disagree on the driver, and going on would put the pod where kubelet does
/// not look.
pub fn pod_parent(driver: CgroupDriver, root: &str, asked: &str, pod_id: &str) -> Result<String> {
    // A parent climbing out (`../../x`) would put the pod's cgroups anywhere in the tree.
    if asked.split('/').any(|c| c == "..") || asked.contains('\0') || asked.contains('\n') {
        return Err(RuntimeError::Invalid(format!(
            "cgroup parent {asked:?} climbs with \"..\" or holds a control character"
        )));
    }
    match driver {
        CgroupDriver::Cgroupfs if asked.is_empty() => {
            Ok(format!("{}/{pod_id}", root.trim_end_matches('/')))
        }
        CgroupDriver::Cgroupfs => {
            if is_slice_form(asked) {
                return Err(RuntimeError::Invalid(format!(
                    "cgroup parent {asked:?} is a systemd slice, but crustd runs the \"cgroupfs\" cgroup driver (runtime.cgroup_driver must match kubelet's cgroupDriver)"
                )));
            }
            Ok(asked.to_string())
        }
        CgroupDriver::Systemd => {
            let parent = if asked.is_empty() {
                let stem = root.strip_suffix(".slice").unwrap_or(root);
                format!("{stem}-pod{pod_id}.slice")
            } else if asked.contains('/') {
                slice_of_path(asked)?
            } else {
                asked.to_string()
            };
            if crust_cgroups::slice_path(&parent).is_none() {
                return Err(RuntimeError::Invalid(format!(
                    "cgroup parent {parent:?} is not a systemd slice name (such as \"kubepods-burstable-pod<uid>.slice\"), but crustd runs the \"systemd\" cgroup driver (runtime.cgroup_driver must match kubelet's cgroupDriver)"
                )));
            }
            Ok(parent)
        }
    }
}

/// Whether `asked` is in a systemd driver's form: a slice name, or (kubelet's) the slice
/// expanded to its path, every component a slice.
fn is_slice_form(asked: &str) -> bool {
    let p = asked.trim_matches('/');
    !p.is_empty() && p.split('/').all(|c| c.ends_with(".slice"))
}

/// The slice of a cgroup parent given as its path. kubelet's systemd cgroup manager sends
/// the pod's slice expanded to where systemd nests it
/// (`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice`), and
/// containerd and CRI-O take its last component. Only a path that is exactly that slice's
/// nesting is taken: any other would put the pod somewhere else than asked.
fn slice_of_path(asked: &str) -> Result<String> {
    let path = format!("/{}", asked.trim_matches('/'));
    let slice = path.rsplit('/').next().unwrap_or_default();
    match crust_cgroups::slice_path(slice) {
        Some(nested) if nested == path => Ok(slice.to_string()),
        Some(nested) => Err(RuntimeError::Invalid(format!(
            "cgroup parent {asked:?} is not where systemd nests the slice {slice:?} ({nested}), but crustd runs the \"systemd\" cgroup driver (runtime.cgroup_driver must match kubelet's cgroupDriver)"
        ))),
        None => Err(RuntimeError::Invalid(format!(
            "cgroup parent {asked:?} is not a systemd slice name or path (such as \"kubepods-burstable-pod<uid>.slice\"), but crustd runs the \"systemd\" cgroup driver (runtime.cgroup_driver must match kubelet's cgroupDriver)"
        ))),
    }
}

/// The directory (from the hierarchy root, leading '/') of a pod's cgroup parent, or None
/// for the root itself.
pub fn pod_dir(driver: CgroupDriver, parent: &str) -> Option<String> {
    match driver {
        CgroupDriver::Cgroupfs => {
            let p = parent.trim_matches('/');
            (!p.is_empty()).then(|| format!("/{p}"))
        }
        CgroupDriver::Systemd => crust_cgroups::slice_path(parent),
    }
}

/// A cgroup crust places one thing in: what the OCI spec's `linux.cgroupsPath` (or the
/// pod init) is given, and the directory that results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// `linux.cgroupsPath`: a cgroupfs path or `slice:prefix:name`.
    pub spec: String,
    /// The directory from the hierarchy root, leading '/'.
    pub dir: String,
    /// The systemd unit, for the systemd driver.
    pub unit: Option<String>,
}

/// The cgroup of `id` (a container, or the pod init when `id` is the pod's id) in the pod
/// whose parent is `parent`.
pub fn child(driver: CgroupDriver, parent: &str, id: &str) -> ContainerCgroup {
    child_with(driver, parent, SCOPE_PREFIX, id)
}

fn child_with(driver: CgroupDriver, parent: &str, prefix: &str, id: &str) -> ContainerCgroup {
    match driver {
        CgroupDriver::Cgroupfs => {
            let dir = format!("/{}/{id}", parent.trim_matches('/')).replace("//", "/");
            ContainerCgroup {
                spec: dir.clone(),
                dir,
                unit: None,
            }
        }
        CgroupDriver::Systemd => {
            let unit = format!("{prefix}-{id}.scope");
            let slice_dir = crust_cgroups::slice_path(parent).unwrap_or_default();
            ContainerCgroup {
                spec: format!("{parent}:{prefix}:{id}"),
                dir: format!("{slice_dir}/{unit}"),
                unit: Some(unit),
            }
        }
    }
}

/// The scope of pod `pod_id`'s shim (systemd driver only).
pub fn shim_scope(pod_id: &str) -> ContainerCgroup {
    child_with(CgroupDriver::Systemd, SHIM_SLICE, SHIM_SCOPE_PREFIX, pod_id)
}

/// Moves `pid` into a new transient scope `cg` (systemd driver), as its only process.
/// Blocking (D-Bus): call it off the async workers.
pub fn start_scope(cg: &ContainerCgroup, pid: u32) -> Result<()> {
    let what = cg.unit.clone().unwrap_or_else(|| cg.spec.clone());
    let c = crust_cgroups::Cgroup::new_systemd(Some(&cg.spec), "", SCOPE_PREFIX).map_err(|e| {
        RuntimeError::Cgroup {
            what: what.clone(),
            message: e.to_string(),
        }
    })?;
    c.start_scope(pid as i32, None)
        .map_err(|e| RuntimeError::Cgroup {
            what,
            message: e.to_string(),
        })
}

/// Stops the scope or slice `unit` (its processes are killed, systemd removes its
/// directory); a unit already gone is fine. Blocking (D-Bus).
pub fn stop_unit(unit: &str) {
    if let Err(e) = crust_cgroups::stop_unit(unit) {
        tracing::warn!(unit, error = %e, "stop systemd unit");
    }
}

/// The kernel's OOM kill count (`oom_kill` of cgroup v2 `memory.events`, which counts the
/// whole subtree; v1 `memory.oom_control`) of the cgroup at `dir`, read through
/// crust-cgroups, or None when it cannot be read (no such cgroup any more, no memory
/// controller).
pub fn oom_kills(dir: &str) -> Option<u64> {
    let path = format!("/{}", dir.trim_start_matches('/'));
    crust_cgroups::Cgroup::new(Some(&path), "container")
        .and_then(|cg| cg.oom_kill_count())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_places_children_under_the_parent() {
        let d = CgroupDriver::Cgroupfs;
        assert_eq!(pod_parent(d, "/crust", "", "p1").unwrap(), "/crust/p1");
        assert_eq!(pod_parent(d, "/crust/", "", "p1").unwrap(), "/crust/p1");
        assert_eq!(
            pod_parent(d, "/crust", "/kubepods/podu", "p1").unwrap(),
            "/kubepods/podu"
        );
        let e = pod_parent(d, "/crust", "kubepods-besteffort-podu.slice", "p").unwrap_err();
        assert!(e.to_string().contains("systemd slice"), "{e}");
        // kubelet's systemd driver sends the slice expanded to its path.
        let k = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu.slice";
        let e = pod_parent(d, "/crust", k, "p").unwrap_err();
        assert!(e.to_string().contains("systemd slice"), "{e}");
        let c = child(d, "kubepods/podu/", "c1");
        assert_eq!(
            (c.spec.as_str(), c.dir.as_str()),
            ("/kubepods/podu/c1", "/kubepods/podu/c1")
        );
        assert_eq!(c.unit, None);
        // A pod init's leaf.
        assert_eq!(child(d, "/crust/p1", "p1").dir, "/crust/p1/p1");
        assert_eq!(child(d, "/", "p3").dir, "/p3");
        assert_eq!(pod_dir(d, "/").as_deref(), None);
        assert_eq!(pod_dir(d, "a/b/").as_deref(), Some("/a/b"));
        assert!(check_root(d, "crust.slice").is_err());
        assert!(check_root(d, "/crust").is_ok());
    }

    #[test]
    fn systemd_places_scopes_in_the_pod_slice() {
        let d = CgroupDriver::Systemd;
        let p = pod_parent(d, "crust.slice", "", "ab12").unwrap();
        assert_eq!(p, "crust-podab12.slice");
        assert_eq!(
            pod_dir(d, &p).as_deref(),
            Some("/crust.slice/crust-podab12.slice")
        );
        let k = "kubepods-burstable-podu1.slice";
        assert_eq!(pod_parent(d, "crust.slice", k, "x").unwrap(), k);
        for bad in ["/kubepods/podu", "a--b.slice", "x"] {
            let e = pod_parent(d, "crust.slice", bad, "x").unwrap_err();
            assert!(e.to_string().contains("not a systemd slice"), "{bad}: {e}");
        }
        // kubelet 1.32's systemd cgroup manager (ToSystemd) sends the slice expanded to its
        // path: the pod goes in that slice (a real kubelet's pods all failed RunPodSandbox).
        let path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice";
        assert_eq!(pod_parent(d, "crust.slice", path, "x").unwrap(), k);
        assert_eq!(
            pod_parent(d, "crust.slice", &format!("{path}/"), "x").unwrap(),
            k
        );
        // A path that is not the slice's own nesting is refused, naming where it would go.
        for bad in [
            "/kubepods.slice/kubepods-burstable-podu1.slice",
            "/other.slice/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice",
        ] {
            let e = pod_parent(d, "crust.slice", bad, "x").unwrap_err();
            assert!(
                e.to_string().contains("not where systemd nests"),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains(path), "{bad}: {e}");
        }
        let e = pod_parent(d, "crust.slice", "/kubepods.slice/a--b.slice", "x").unwrap_err();
        assert!(e.to_string().contains("not a systemd slice"), "{e}");
        let c = child(d, k, "c1");
        assert_eq!(c.spec, "kubepods-burstable-podu1.slice:crust:c1");
        assert_eq!(
            c.dir,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/crust-c1.scope"
        );
        assert_eq!(c.unit.as_deref(), Some("crust-c1.scope"));
        let s = shim_scope("p9");
        assert_eq!(
            (s.spec.as_str(), s.dir.as_str()),
            (
                "system.slice:crust-shim:p9",
                "/system.slice/crust-shim-p9.scope"
            )
        );
        assert!(check_root(d, "crust.slice").is_ok());
        assert!(check_root(d, "/crust").is_err());
    }
}
