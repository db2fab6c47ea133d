//! The systemd cgroup driver (cgroup v2 only): a container's cgroup is a transient scope
//! that systemd creates over its D-Bus API, as runc's `--systemd-cgroup` does.
//!
//! - `linux.cgroupsPath` is `slice:prefix:name` ([`Unit::parse`]): the unit is
//!   `<prefix>-<name>.scope` in `slice` (default `system.slice`), whose directory is
//!   `/sys/fs/cgroup/<expanded slice>/<unit>` (kubelet's `kubepods-burstable-pod<uid>.slice`
//!   becomes `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice`).
//!   systemd makes missing parent slices itself.
//! - [`crate::Cgroup::start_scope`] starts the scope with the first process in it
//!   (`PIDs`), `Delegate=yes` (the container may manage its own subtree) and the resource
//!   properties systemd owns ([`properties`]); then every limit is also written to the
//!   cgroup files as with cgroupfs, which covers what systemd has no property for (io.max,
//!   hugetlb, the eBPF device filter, other unified keys). Both agree, so a `systemctl
//!   daemon-reload` that re-applies the unit's properties changes nothing.
//! - `update` sets the properties on the unit (SetUnitProperties, runtime) and rewrites the
//!   files; `delete` stops the unit (systemd removes the directory) and removes whatever is
//!   left; freeze, stats and OOM counts read and write the scope's directory directly.
//!
//! The D-Bus client ([`bus`], zbus) is built only with the `systemd` feature; without it
//! the driver refuses to start or stop units.

#[cfg(feature = "systemd")]
mod bus;
pub(crate) mod properties;

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::layout::{self, Layout};
use crate::{path, resources, v2, Cgroup, CgroupError};

/// Where systemd keeps its runtime state; present only when systemd is the init system.
const SYSTEMD_RUN: &str = "/run/systemd/system";

/// The transient unit owning a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Unit {
    /// `<prefix>-<name>.scope`.
    pub(crate) name: String,
    /// The parent slice, e.g. `kubepods-burstable-pod1.slice`.
    pub(crate) slice: String,
}

impl Unit {
    /// `slice:prefix:name` → the scope unit. Slices as the container's own unit (`name`
    /// ending in `.slice`) are refused: crust makes scopes only.
    pub(crate) fn parse(spec: &str) -> Result<Self, CgroupError> {
        let invalid = |reason| CgroupError::InvalidPath {
            path: spec.to_string(),
            reason,
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(invalid(
                "the systemd cgroup driver needs \"slice:prefix:name\"",
            ));
        };
        if name.ends_with(".slice") {
            return Err(invalid(
                "a container unit that is a slice is not supported (crust makes scopes)",
            ));
        }
        // Same checks as the path mapping (names, slice syntax).
        path::resolve(Some(spec), name)?;
        // runc's naming, also with an empty prefix (the directory path.rs maps to).
        let unit_name = format!("{prefix}-{name}.scope");
        if unit_name.len() > 255 || unit_name.chars().any(|c| c.is_control() || c == '\\') {
            return Err(invalid("not a valid systemd unit name"));
        }
        Ok(Unit {
            name: unit_name,
            slice: if slice.is_empty() {
                "system.slice".to_string()
            } else {
                slice.to_string()
            },
        })
    }
}

/// Whether systemd is this host's init system (its runtime directory exists).
pub fn systemd_running() -> bool {
    Path::new(SYSTEMD_RUN).is_dir()
}

/// Stops systemd unit `name` (a slice: every unit in it too) and waits until it is gone;
/// a unit systemd does not know is fine.
pub fn stop_unit(name: &str) -> Result<(), CgroupError> {
    stop(name)
}

impl Cgroup {
    /// The systemd driver's cgroup for `linux.cgroupsPath` (`slice:prefix:name`; None or
    /// empty: `:<default_prefix>:<container id>`, i.e. `system.slice/<prefix>-<id>.scope`).
    /// Needs cgroup v2 and systemd as init; nothing is created until
    /// [`Cgroup::start_scope`].
    pub fn new_systemd(
        cgroups_path: Option<&str>,
        container_id: &str,
        default_prefix: &str,
    ) -> Result<Self, CgroupError> {
        let spec = match cgroups_path {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => format!(":{default_prefix}:{container_id}"),
        };
        let unit = Unit::parse(&spec)?;
        let layout = layout::host_layout()?;
        if !matches!(layout, Layout::V2 { .. }) {
            return Err(CgroupError::Unsupported {
                field: "the systemd cgroup driver".into(),
                reason: "it needs cgroup v2 (unified) only; this host has v1 hierarchies",
            });
        }
        if !systemd_running() {
            return Err(CgroupError::Unsupported {
                field: "the systemd cgroup driver".into(),
                reason: "systemd is not the init system here (no /run/systemd/system)",
            });
        }
        let inner = path::resolve(Some(&spec), container_id)?;
        let mut cg = Self::build(Path::new("/"), layout, &inner)?;
        cg.systemd = Some(unit);
        Ok(cg)
    }

    /// The systemd unit owning this cgroup (systemd driver), e.g. `crust-abc.scope`.
    pub fn systemd_unit(&self) -> Option<&str> {
        self.systemd.as_ref().map(|u| u.name.as_str())
    }

    /// systemd driver: starts the scope with `pid` in it and `resources` applied (unit
    /// properties, then the cgroup files). cgroupfs: creates the directories, applies
    /// `resources` and moves `pid` in. Everything is validated before anything is made.
    pub fn start_scope(
        &self,
        pid: i32,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        let Some(unit) = &self.systemd else {
            self.create()?;
            if let Some(r) = resources {
                self.apply(r)?;
            }
            return self.add_process(pid);
        };
        if pid <= 0 {
            return Err(CgroupError::InvalidResource {
                field: "pid".into(),
                reason: format!("{pid} is not a process id"),
            });
        }
        let mut props = vec![
            (
                "Description",
                properties::Value::Str(format!("crust container {}", unit.name)),
            ),
            ("Slice", properties::Value::Str(unit.slice.clone())),
            ("Delegate", properties::Value::Bool(true)),
            ("DefaultDependencies", properties::Value::Bool(false)),
            ("MemoryAccounting", properties::Value::Bool(true)),
            ("CPUAccounting", properties::Value::Bool(true)),
            ("IOAccounting", properties::Value::Bool(true)),
            ("TasksAccounting", properties::Value::Bool(true)),
            ("PIDs", properties::Value::U32s(vec![pid as u32])),
        ];
        if let Some(r) = resources {
            resources::validate(r, true)?;
            props.extend(properties::from_resources(r)?);
        }
        start(&unit.name, &props)?;
        // systemd enables in a slice only the controllers it manages: enable the others
        // (hugetlb, ...) down to the scope, as runc's systemd driver does after starting the
        // unit, so limits such as kubelet's hugetlb.<size>.max find their files.
        if let crate::Hierarchy::V2 { dir } = &self.hierarchy {
            if let Err(e) = v2::create(&dir.mount, &dir.dir) {
                let _ = stop(&unit.name);
                return Err(e);
            }
        }
        if let Some(r) = resources {
            if let Err(e) = v2::apply(self.v2_dir(), r) {
                let _ = stop(&unit.name);
                return Err(e);
            }
        }
        Ok(())
    }

    /// systemd driver: the unit's properties for `r` (called by [`Cgroup::apply`] before it
    /// writes the files).
    pub(crate) fn systemd_set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        match &self.systemd {
            Some(u) => set_properties(&u.name, &properties::from_resources(r)?),
            None => Ok(()),
        }
    }

    /// systemd driver: stops the unit (called by [`Cgroup::delete`] before it removes what
    /// is left of the directory).
    pub(crate) fn systemd_stop(&self) -> Result<(), CgroupError> {
        match &self.systemd {
            Some(u) => stop(&u.name),
            None => Ok(()),
        }
    }

    fn v2_dir(&self) -> &Path {
        match &self.hierarchy {
            crate::Hierarchy::V2 { dir } => &dir.dir,
            // new_systemd only builds v2 cgroups.
            crate::Hierarchy::V1 { .. } => Path::new("/nonexistent"),
        }
    }
}

#[cfg(feature = "systemd")]
fn start(unit: &str, props: &properties::Props) -> Result<(), CgroupError> {
    bus::Manager::connect(unit)?.start_transient(unit, props)
}

#[cfg(feature = "systemd")]
fn set_properties(unit: &str, props: &properties::Props) -> Result<(), CgroupError> {
    bus::Manager::connect(unit)?.set_properties(unit, props)
}

#[cfg(feature = "systemd")]
fn stop(unit: &str) -> Result<(), CgroupError> {
    bus::Manager::connect(unit)?.stop(unit)
}

#[cfg(not(feature = "systemd"))]
fn unsupported() -> CgroupError {
    CgroupError::Unsupported {
        field: "the systemd cgroup driver".into(),
        reason: "this binary was built without it (crust-cgroups feature \"systemd\")",
    }
}

#[cfg(not(feature = "systemd"))]
fn start(_: &str, _: &properties::Props) -> Result<(), CgroupError> {
    Err(unsupported())
}

#[cfg(not(feature = "systemd"))]
fn set_properties(_: &str, _: &properties::Props) -> Result<(), CgroupError> {
    Err(unsupported())
}

#[cfg(not(feature = "systemd"))]
fn stop(_: &str) -> Result<(), CgroupError> {
    Err(unsupported())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        let u = Unit::parse("kubepods-burstable-pod1.slice:cri-containerd:abc").unwrap();
        assert_eq!(u.name, "cri-containerd-abc.scope");
        assert_eq!(u.slice, "kubepods-burstable-pod1.slice");
        let u = Unit::parse(":crust:abc").unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("crust-abc.scope", "system.slice")
        );
        assert_eq!(Unit::parse("a.slice::x").unwrap().name, "-x.scope");
        for bad in [
            "/a/b",
            "a:b",
            "a.slice:p:n.slice",
            "a.slice:p:",
            "bad:p:n",
            "a.slice:p:x/y",
        ] {
            assert!(Unit::parse(bad).is_err(), "{bad}");
        }
    }
}
