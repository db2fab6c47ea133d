//! CDI (Container Device Interface) devices: the spec files of the configured directories
//! ([`Registry::load`]), qualified device names resolved against them, and their container
//! edits applied to a container's OCI spec ([`inject`]): device nodes (with their cgroup
//! rule), mounts, environment, hooks, additional groups; the edits of a spec file once, as
//! soon as any of its devices is asked for.
//!
//! Written here rather than taken from the `container-device-interface` crate: that crate
//! edits an `oci_spec::runtime::Spec` (crust builds its spec as JSON, and a round trip
//! through another model may drop what it does not know), prints to stdout from its parser
//! (crustd's stdout is its log), and its JSON-schema dependency brings an HTTP client and
//! a TLS stack with a C build into crustd, which needs neither.
//!
//! Rules (as the CDI spec and its reference implementation): files are `*.json`, `*.yaml`
//! or `*.yml`; a later directory has priority over an earlier one (default `/etc/cdi`, then
//! `/var/run/cdi`); the same device in two files of one directory is a conflict and refused
//! by name; a file that does not parse or validate is skipped, and named in the error when
//! a device it might define is asked for. The directories are read at each create that
//! asks for a device, so specs written by a device plugin are seen without a restart.

pub mod spec;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::runtime::error::{invalid, Result};
use spec::{ContainerEdits, Spec};

/// Annotation keys of CDI device requests (`cdi.k8s.io/<name>`: a comma-separated list of
/// qualified device names), as device plugins hand them to kubelet.
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

/// The largest spec file read.
const SPEC_FILE_CAP: u64 = 1 << 20;

/// The default spec directories, lowest priority first.
pub const DEFAULT_SPEC_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

/// A device found in a spec file.
#[derive(Debug, Clone)]
struct Found {
    /// The spec file.
    file: PathBuf,
    /// Its priority (index of its directory).
    priority: usize,
    /// The device's edits.
    edits: ContainerEdits,
}

/// The devices of the spec directories.
#[derive(Debug, Default)]
pub struct Registry {
    /// Qualified name → where it is defined (conflicts removed).
    devices: BTreeMap<String, Found>,
    /// Spec file → its common edits.
    specs: BTreeMap<PathBuf, ContainerEdits>,
    /// Why files or devices were left out.
    problems: Vec<String>,
}

impl Registry {
    /// Reads every spec file of `dirs` (lowest priority first; a missing directory is
    /// empty). Blocking.
    pub fn load(dirs: &[PathBuf]) -> Self {
        let mut r = Registry::default();
        let mut conflicts: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for (priority, dir) in dirs.iter().enumerate() {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "yaml" | "yml")
                    )
                })
                .collect();
            files.sort();
            for file in files {
                let spec = match read_spec(&file) {
                    Ok(s) => s,
                    Err(e) => {
                        r.problems.push(format!("{}: {e}", file.display()));
                        continue;
                    }
                };
                for d in &spec.devices {
                    let q = format!("{}={}", spec.kind, d.name);
                    if let Some(prev) = r.devices.get(&q) {
                        if prev.priority == priority {
                            conflicts
                                .entry(q.clone())
                                .or_insert_with(|| vec![prev.file.clone()])
                                .push(file.clone());
                            continue;
                        }
                    }
                    conflicts.remove(&q);
                    r.devices.insert(
                        q,
                        Found {
                            file: file.clone(),
                            priority,
                            edits: d.container_edits.clone(),
                        },
                    );
                }
                r.specs.insert(file, spec.container_edits);
            }
        }
        for (q, files) in conflicts {
            r.devices.remove(&q);
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            r.problems.push(format!(
                "device {q} is defined by several specs: {}",
                files.join(", ")
            ));
        }
        r
    }

    /// The qualified names of every device found.
    pub fn device_names(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    /// The edits of devices `names` in order: each spec file's common edits once (before
    /// its first device's), then each device's. An unknown name is InvalidArgument naming
    /// it (and the files that were left out, if any).
    pub fn resolve(&self, names: &[String]) -> Result<Vec<(String, ContainerEdits)>> {
        let mut out = Vec::new();
        let mut seen_specs = Vec::new();
        for n in names {
            spec::parse_qualified(n).map_err(invalid)?;
            let Some(f) = self.devices.get(n) else {
                let mut msg = format!("unknown CDI device {n:?}");
                if !self.problems.is_empty() {
                    msg.push_str(&format!(" (left out: {})", self.problems.join("; ")));
                }
                return Err(invalid(msg));
            };
            if !seen_specs.contains(&f.file) {
                seen_specs.push(f.file.clone());
                if let Some(common) = self.specs.get(&f.file) {
                    out.push((format!("{n} (spec {})", f.file.display()), common.clone()));
                }
            }
            out.push((n.clone(), f.edits.clone()));
        }
        Ok(out)
    }
}

/// Reads and validates one spec file.
fn read_spec(path: &Path) -> std::result::Result<Spec, String> {
    let md = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !md.is_file() || md.len() > SPEC_FILE_CAP {
        return Err(format!(
            "not a regular file of at most {SPEC_FILE_CAP} bytes"
        ));
    }
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    let spec: Spec = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_slice(&text).map_err(|e| e.to_string())?
    } else {
        serde_yaml::from_slice(&text).map_err(|e| e.to_string())?
    };
    if !spec::version_supported(&spec.cdi_version) {
        return Err(format!(
            "cdiVersion {:?} is not supported",
            spec.cdi_version
        ));
    }
    spec::parse_kind(&spec.kind)?;
    for d in &spec.devices {
        spec::parse_qualified(&format!("{}={}", spec.kind, d.name))?;
    }
    Ok(spec)
}

/// The device names a container asks for: `CDI_devices` first, then the values of its
/// `cdi.k8s.io/` annotations (sorted by key), without repeats.
pub fn requested(cdi_devices: &[String], annotations: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_annotations = annotations
        .iter()
        .filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    for n in cdi_devices
        .iter()
        .map(String::as_str)
        .chain(from_annotations)
    {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// Applies the edits of devices `names` (resolved in `reg`) to OCI spec `oci`.
pub fn inject(oci: &mut Value, reg: &Registry, names: &[String]) -> Result<()> {
    for (who, e) in reg.resolve(names)? {
        apply(oci, &who, &e)?;
    }
    Ok(())
}

/// Applies one set of edits; `who` names the device (or spec) in errors.
fn apply(oci: &mut Value, who: &str, e: &ContainerEdits) -> Result<()> {
    if e.intel_rdt.is_some() {
        return Err(invalid(format!(
            "CDI device {who}: intelRdt edits are not supported"
        )));
    }
    if !e.net_devices.is_empty() {
        return Err(invalid(format!(
            "CDI device {who}: netDevices edits are not supported"
        )));
    }
    for kv in &e.env {
        let Some((k, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(invalid(format!(
                "CDI device {who}: env entry {kv:?} is not NAME=value"
            )));
        };
        let env = array(&mut oci["process"]["env"]);
        let prefix = format!("{k}=");
        match env
            .iter_mut()
            .find(|v| v.as_str().is_some_and(|s| s.starts_with(&prefix)))
        {
            Some(v) => *v = json!(kv),
            None => env.push(json!(kv)),
        }
    }
    for n in &e.device_nodes {
        device_node(oci, who, n)?;
    }
    for m in &e.mounts {
        if !m.container_path.starts_with('/') || !Path::new(&m.host_path).is_absolute() {
            return Err(invalid(format!(
                "CDI device {who}: mount {:?} -> {:?} needs absolute paths",
                m.host_path, m.container_path
            )));
        }
        let (kind, options) = if m.kind.is_empty() {
            let mut o = m.options.clone();
            if !o.iter().any(|x| x == "bind" || x == "rbind") {
                o.insert(0, "rbind".into());
            }
            ("bind".to_string(), o)
        } else {
            (m.kind.clone(), m.options.clone())
        };
        let mounts = array(&mut oci["mounts"]);
        mounts.retain(|x| x["destination"] != json!(m.container_path));
        mounts.push(json!({"destination": m.container_path, "type": kind, "source": m.host_path, "options": options}));
    }
    for h in &e.hooks {
        if !spec::HOOK_NAMES.contains(&h.hook_name.as_str()) {
            return Err(invalid(format!(
                "CDI device {who}: unknown hook {:?}",
                h.hook_name
            )));
        }
        if !Path::new(&h.path).is_absolute() {
            return Err(invalid(format!(
                "CDI device {who}: hook path {:?} is not absolute",
                h.path
            )));
        }
        let mut hook = json!({"path": h.path});
        if !h.args.is_empty() {
            hook["args"] = json!(h.args);
        }
        if !h.env.is_empty() {
            hook["env"] = json!(h.env);
        }
        if let Some(t) = h.timeout {
            hook["timeout"] = json!(t);
        }
        array(&mut oci["hooks"][h.hook_name.as_str()]).push(hook);
    }
    for g in e.additional_gids.iter().filter(|g| **g != 0) {
        let gids = array(&mut oci["process"]["user"]["additionalGids"]);
        if !gids.iter().any(|x| x.as_u64() == Some(u64::from(*g))) {
            gids.push(json!(g));
        }
    }
    Ok(())
}

/// A device node and its cgroup rule; what the spec leaves out is taken from the host
/// node (type, numbers, mode) and the container's process (owner).
fn device_node(oci: &mut Value, who: &str, n: &spec::DeviceNode) -> Result<()> {
    if !n.path.starts_with('/') {
        return Err(invalid(format!(
            "CDI device {who}: device path {:?} is not absolute",
            n.path
        )));
    }
    let host = if n.host_path.is_empty() {
        &n.path
    } else {
        &n.host_path
    };
    let md = std::fs::metadata(host);
    let (mut kind, mut major, mut minor, mut mode) =
        (n.kind.clone(), n.major, n.minor, n.file_mode);
    if let Ok(md) = &md {
        let ft = md.file_type();
        let host_kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else if ft.is_fifo() {
            "p"
        } else {
            return Err(invalid(format!(
                "CDI device {who}: {host} is not a device node"
            )));
        };
        if kind.is_empty() {
            kind = host_kind.into();
        }
        let rdev = md.rdev();
        major.get_or_insert(i64::from(libc::major(rdev)));
        minor.get_or_insert(i64::from(libc::minor(rdev)));
        mode.get_or_insert(md.mode() & 0o7777);
    } else if kind.is_empty() || (kind != "p" && (major.is_none() || minor.is_none())) {
        return Err(invalid(format!(
            "CDI device {who}: host device {host} cannot be found and the spec does not give its type and numbers"
        )));
    }
    if kind == "u" {
        kind = "c".into();
    }
    if !matches!(kind.as_str(), "c" | "b" | "p") {
        return Err(invalid(format!(
            "CDI device {who}: device type {kind:?} is not c, b, u or p"
        )));
    }
    let user = &oci["process"]["user"];
    let uid = n
        .uid
        .or_else(|| user["uid"].as_u64().and_then(|v| u32::try_from(v).ok()));
    let gid = n
        .gid
        .or_else(|| user["gid"].as_u64().and_then(|v| u32::try_from(v).ok()));
    let mut dev = json!({"path": n.path, "type": kind});
    if kind != "p" {
        dev["major"] = json!(major.unwrap_or_default());
        dev["minor"] = json!(minor.unwrap_or_default());
    }
    if let Some(m) = mode {
        dev["fileMode"] = json!(m);
    }
    if let Some(u) = uid {
        dev["uid"] = json!(u);
    }
    if let Some(g) = gid {
        dev["gid"] = json!(g);
    }
    let devs = array(&mut oci["linux"]["devices"]);
    devs.retain(|d| d["path"] != json!(n.path));
    devs.push(dev);
    let perms = match n.permissions.as_str() {
        "" => "rwm",
        "none" => return Ok(()),
        p if p.chars().all(|c| "rwm".contains(c)) => p,
        p => {
            return Err(invalid(format!(
                "CDI device {who}: permissions {p:?} are not a subset of rwm"
            )))
        }
    };
    if kind != "p" {
        array(&mut oci["linux"]["resources"]["devices"]).push(json!({
            "allow": true, "type": kind, "major": major, "minor": minor, "access": perms,
        }));
    }
    Ok(())
}

/// `v` as a JSON array, made one if it is absent (null).
fn array(v: &mut Value) -> &mut Vec<Value> {
    if !v.is_array() {
        *v = json!([]);
    }
    match v {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
