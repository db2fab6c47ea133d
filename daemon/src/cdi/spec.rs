//! The CDI spec file format (Container Device Interface specification, `cdiVersion`
//! 0.3.0 to 0.8.0): one file, JSON or YAML, describes the devices of one `kind`
//! (`vendor/class`) and the container edits each of them needs, plus edits common to every
//! device of the file.
//!
//! Fields crust does not apply (`intelRdt`, `netDevices`) are parsed so that a device that
//! needs them is refused by name, never injected half.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One spec file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// The spec version (`0.3.0` … `0.8.0`).
    pub cdi_version: String,
    /// `vendor/class` of every device of the file.
    pub kind: String,
    /// Free-form annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The devices.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Edits applied once when any device of this file is injected.
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

/// One device of a spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The name (the part after `=` of the qualified name).
    pub name: String,
    /// Free-form annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// What injecting it changes.
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

/// Changes to a container's OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEdits {
    /// `NAME=value` entries.
    #[serde(default)]
    pub env: Vec<String>,
    /// Device nodes.
    #[serde(default)]
    pub device_nodes: Vec<DeviceNode>,
    /// OCI hooks.
    #[serde(default)]
    pub hooks: Vec<Hook>,
    /// Mounts.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Intel RDT settings (not applied by crust: refused).
    #[serde(default)]
    pub intel_rdt: Option<Value>,
    /// Groups added to the process.
    #[serde(default, rename = "additionalGIDs")]
    pub additional_gids: Vec<u32>,
    /// Network devices moved into the container (not applied by crust: refused).
    #[serde(default)]
    pub net_devices: Vec<Value>,
}

/// A device node.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host (default: `path`).
    #[serde(default)]
    pub host_path: String,
    /// `c`, `b`, `u` or `p` (default: the host node's).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Major number (default: the host node's).
    #[serde(default)]
    pub major: Option<i64>,
    /// Minor number (default: the host node's).
    #[serde(default)]
    pub minor: Option<i64>,
    /// Mode bits (default: the host node's).
    #[serde(default)]
    pub file_mode: Option<u32>,
    /// cgroup access, a subset of `rwm` (default `rwm`; `none`: no rule).
    #[serde(default)]
    pub permissions: String,
    /// Owner (default: the container process's).
    #[serde(default)]
    pub uid: Option<u32>,
    /// Group (default: the container process's).
    #[serde(default)]
    pub gid: Option<u32>,
}

/// An OCI hook.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// `prestart`, `createRuntime`, `createContainer`, `startContainer`, `poststart` or
    /// `poststop`.
    pub hook_name: String,
    /// Absolute path of the program.
    pub path: String,
    /// Its argv.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds.
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// A mount.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// Source on the host.
    pub host_path: String,
    /// Destination in the container.
    pub container_path: String,
    /// Filesystem type (default: a bind mount).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Mount options.
    #[serde(default)]
    pub options: Vec<String>,
}

/// The hook names the OCI runtime spec defines.
pub const HOOK_NAMES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Whether `v` is a CDI spec version crust reads (0.3.0 … 0.8.0).
pub fn version_supported(v: &str) -> bool {
    let mut it = v.split('.');
    let (Some("0"), Some(minor), Some(patch), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return false;
    };
    matches!(minor.parse::<u32>(), Ok(3..=8)) && patch.parse::<u32>().is_ok()
}

/// Splits qualified device name `vendor/class=name`, checking each part's syntax (the CDI
/// spec's: vendor and class of letters, digits, `.`, `-`, `_` (class without `.`), starting
/// with a letter and ending with a letter or digit; the name of letters, digits, `-`, `_`,
/// `.`, `:`, starting and ending with a letter or digit).
pub fn parse_qualified(q: &str) -> Result<(&str, &str, &str), String> {
    let (kind, name) = q
        .split_once('=')
        .ok_or_else(|| format!("{q:?} is not a qualified CDI device name (vendor/class=name)"))?;
    let (vendor, class) = kind
        .split_once('/')
        .ok_or_else(|| format!("{q:?} is not a qualified CDI device name (vendor/class=name)"))?;
    check_kind_part(vendor, "vendor", "._-").map_err(|e| format!("{q:?}: {e}"))?;
    check_kind_part(class, "class", "_-").map_err(|e| format!("{q:?}: {e}"))?;
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok_end(name.chars().next())
        || !ok_end(name.chars().last())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(format!("{q:?}: invalid device name {name:?}"));
    }
    Ok((vendor, class, name))
}

/// Splits `vendor/class` (a spec's `kind`), checking both parts.
pub fn parse_kind(kind: &str) -> Result<(&str, &str), String> {
    let (vendor, class) = kind
        .split_once('/')
        .ok_or_else(|| format!("kind {kind:?} is not vendor/class"))?;
    check_kind_part(vendor, "vendor", "._-")?;
    check_kind_part(class, "class", "_-")?;
    Ok((vendor, class))
}

fn check_kind_part(s: &str, what: &str, extra: &str) -> Result<(), String> {
    let first = s.chars().next();
    let last = s.chars().last();
    if !first.is_some_and(|c| c.is_ascii_alphabetic())
        || !last.is_some_and(|c| c.is_ascii_alphanumeric())
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    {
        return Err(format!("invalid {what} {s:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        assert_eq!(
            parse_qualified("vendor.com/gpu=0").unwrap(),
            ("vendor.com", "gpu", "0")
        );
        assert_eq!(
            parse_qualified("nvidia.com/gpu=GPU-1:mig.2").unwrap(),
            ("nvidia.com", "gpu", "GPU-1:mig.2")
        );
        for bad in [
            "gpu0",
            "vendor.com=0",
            "vendor.com/gpu",
            "vendor.com/gpu=",
            "1vendor/gpu=0",
            "vendor/gp.u=0",
            "vendor/gpu=-0",
            "vendor/gpu=a b",
            "/gpu=0",
        ] {
            assert!(parse_qualified(bad).is_err(), "{bad}");
        }
        assert!(parse_kind("vendor.com/net").is_ok());
        assert!(parse_kind("vendor.com").is_err());
    }

    #[test]
    fn versions() {
        for v in ["0.3.0", "0.5.0", "0.6.0", "0.8.0"] {
            assert!(version_supported(v), "{v}");
        }
        for v in ["0.2.0", "0.9.0", "1.0.0", "0.6", "x", ""] {
            assert!(!version_supported(v), "{v}");
        }
    }

    #[test]
    fn parses_json_and_yaml() {
        let y = "cdiVersion: 0.6.0\nkind: example.com/dev\ndevices:\n- name: a\n  containerEdits:\n    env: [A=1]\n    deviceNodes:\n    - path: /dev/xa\n      hostPath: /dev/null\n      permissions: rw\n    additionalGIDs: [44]\ncontainerEdits:\n  mounts:\n  - hostPath: /tmp\n    containerPath: /t\n    options: [rbind, ro]\n  hooks:\n  - hookName: createContainer\n    path: /bin/true\n";
        let s: Spec = serde_yaml::from_str(y).unwrap();
        assert_eq!(s.kind, "example.com/dev");
        let e = &s.devices[0].container_edits;
        assert_eq!(e.env, ["A=1"]);
        assert_eq!(e.device_nodes[0].host_path, "/dev/null");
        assert_eq!(e.additional_gids, [44]);
        assert_eq!(s.container_edits.mounts[0].options, ["rbind", "ro"]);
        assert_eq!(s.container_edits.hooks[0].hook_name, "createContainer");
        let j = r#"{"cdiVersion":"0.5.0","kind":"example.com/dev","devices":[{"name":"b","containerEdits":{"deviceNodes":[{"path":"/dev/b","type":"c","major":1,"minor":3}]}}]}"#;
        let s: Spec = serde_json::from_str(j).unwrap();
        let n = &s.devices[0].container_edits.device_nodes[0];
        assert_eq!((n.kind.as_str(), n.major, n.minor), ("c", Some(1), Some(3)));
    }
}
