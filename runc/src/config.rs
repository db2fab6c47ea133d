//! Loading and validating a bundle's `config.json`.
//!
//! Invariant: everything that can be checked without side effects is checked here, before
//! `create` touches the host (state dir, cgroup, processes), so a bad config changes nothing.
//! Errors name the offending field (`linux.namespaces[2].type`, `root.path`, ...).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Errors of config loading/validation; each names the file or field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("open {path:?}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {path:?}: field {field}: {msg}")]
    Parse {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("{field}: {msg}")]
    Invalid { field: String, msg: String },
}

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// Parses JSON text into `T`, reporting the path of the failing field.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &[u8],
) -> Result<T, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ConfigError::Parse {
            path: path.to_path_buf(),
            field: if field.is_empty() || field == "." {
                "(document)".into()
            } else {
                field
            },
            msg: e.into_inner().to_string(),
        }
    })
}

/// Reads and parses `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, ConfigError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| ConfigError::Open {
        path: path.clone(),
        source,
    })?;
    parse_json(&path, &text)
}

/// Absolute rootfs path (`root.path` relative to the bundle).
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, ConfigError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let p = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let p = std::fs::canonicalize(&p)
        .map_err(|e| invalid("root.path", format!("rootfs {p:?}: {e}")))?;
    if !p.is_dir() {
        return Err(invalid(
            "root.path",
            format!("rootfs {p:?} is not a directory"),
        ));
    }
    Ok(p)
}

/// Sysctls that are namespaced, and the namespace each needs.
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Whether the kernel supports namespace `t` (e.g. time namespaces need 5.6).
pub fn kernel_has_namespace(t: LinuxNamespaceType) -> bool {
    Path::new("/proc/self/ns").join(ns_proc_name(t)).exists()
}

/// Name of the namespace's file in /proc/<pid>/ns.
pub fn ns_proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Validates the spec for `create`/`run`. `rootfs` must already be resolved.
pub fn validate(spec: &Spec) -> Result<(), ConfigError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    if let Some(rl) = process.rlimits() {
        let mut seen = HashSet::new();
        for (i, r) in rl.iter().enumerate() {
            if !seen.insert(format!("{:?}", r.typ())) {
                return Err(invalid(
                    format!("process.rlimits[{i}].type"),
                    "duplicate rlimit",
                ));
            }
            if r.soft() > r.hard() {
                return Err(invalid(
                    format!("process.rlimits[{i}]"),
                    "soft limit is greater than hard limit",
                ));
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    let mut types = HashSet::new();
    let nss = linux.namespaces().clone().unwrap_or_default();
    for (i, ns) in nss.iter().enumerate() {
        if !types.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace {:?}", ns_proc_name(ns.typ())),
            ));
        }
        if !kernel_has_namespace(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!(
                    "namespace {:?} is not supported by this kernel",
                    ns_proc_name(ns.typ())
                ),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{p:?} does not exist"),
                ));
            }
        }
    }
    let has_new = |t| nss.iter().any(|n| n.typ() == t);
    let userns_new = nss
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        let maps = maps.clone().unwrap_or_default();
        if !userns_new && !maps.is_empty() {
            return Err(invalid(
                field,
                "mappings given without a new user namespace",
            ));
        }
        if userns_new && maps.is_empty() {
            return Err(invalid(
                field,
                "user namespace enabled, but no mappings given",
            ));
        }
        for (i, m) in maps.iter().enumerate() {
            if m.size() == 0 {
                return Err(invalid(
                    format!("{field}[{i}].size"),
                    "must be greater than 0",
                ));
            }
            if m.container_id().checked_add(m.size()).is_none()
                || m.host_id().checked_add(m.size()).is_none()
            {
                return Err(invalid(format!("{field}[{i}]"), "range overflows"));
            }
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has_new(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "unable to set hostname without a private UTS namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
        && !has_new(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "domainname",
            "unable to set domainname without a private UTS namespace",
        ));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            let field = format!("linux.sysctl[{key:?}]");
            match sysctl_namespace(key) {
                Some(t) if has_new(t) => {}
                Some(t) => {
                    return Err(invalid(
                        field,
                        format!(
                            "sysctl is not in a separate kernel namespace (needs {:?})",
                            ns_proc_name(t)
                        ),
                    ))
                }
                None => return Err(invalid(field, "sysctl is not namespaced: not allowed")),
            }
        }
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            ("hooks.prestart", hooks.prestart()),
            ("hooks.createRuntime", hooks.create_runtime()),
            ("hooks.createContainer", hooks.create_container()),
            ("hooks.startContainer", hooks.start_container()),
            ("hooks.poststart", hooks.poststart()),
            ("hooks.poststop", hooks.poststop()),
        ];
        for (field, list) in all {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(invalid(format!("{field}[{i}].path"), "must be absolute"));
                }
                if h.timeout().is_some_and(|t| t <= 0) {
                    return Err(invalid(
                        format!("{field}[{i}].timeout"),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `true` when the spec asks for a namespace of type `t` (new or joined).
pub fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == t))
}

/// The cgroup resources to apply for `resources`: the spec's device rules followed by the
/// rules every container gets (runc's `AllowedDevices`, see
/// [`crust_cgroups::default_allowed_devices`]), so a deny-all rule still leaves /dev/null and
/// the pty usable. `linux.devices` grants nothing: a device node listed there is created,
/// but only `linux.resources.devices` allows access to it (as runc and crun).
pub fn cgroup_resources(
    resources: &oci_spec::runtime::LinuxResources,
) -> oci_spec::runtime::LinuxResources {
    let mut r = resources.clone();
    let mut rules = r.devices().clone().unwrap_or_default();
    rules.extend(crust_cgroups::default_allowed_devices());
    r.set_devices(Some(rules));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<(), ConfigError> {
        let spec: Spec = parse_json(Path::new("config.json"), v.to_string().as_bytes())?;
        validate(&spec)
    }

    #[test]
    fn accepts_minimal() {
        check(base()).expect("valid");
    }

    #[test]
    fn unknown_namespace_names_field() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        let e = check(v).expect_err("must fail").to_string();
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
    }

    #[test]
    fn mappings_need_userns() {
        let mut v = base();
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID":0,"hostID":1000,"size":1}]);
        let e = check(v).expect_err("must fail").to_string();
        assert!(e.contains("linux.uidMappings"), "{e}");
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID":0,"hostID":1000,"size":0}]);
        v["linux"]["gidMappings"] = serde_json::json!([{"containerID":0,"hostID":1000,"size":1}]);
        let e = check(v).expect_err("must fail").to_string();
        assert!(e.contains("linux.uidMappings[0].size"), "{e}");
    }

    #[test]
    fn sysctl_and_hostname_need_namespaces() {
        let mut v = base();
        v["hostname"] = "x".into();
        assert!(check(v).expect_err("fail").to_string().contains("hostname"));
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v)
            .expect_err("fail")
            .to_string()
            .contains("net.ipv4.ip_forward"));
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(check(v)
            .expect_err("fail")
            .to_string()
            .contains("not namespaced"));
    }

    #[test]
    fn empty_args_rejected() {
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v)
            .expect_err("fail")
            .to_string()
            .contains("process.args"));
    }
}
