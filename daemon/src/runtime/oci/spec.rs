//! The OCI runtime spec of a container, built from the image config and the container's
//! [`ContainerSpec`] the way containerd's CRI plugin builds it: command/args/env/workdir
//! merging, the user ([`super::user`]), default and user mounts with propagation
//! ([`super::mounts`]), devices ([`super::devices`]), resources ([`super::resources`]),
//! capabilities over the default set ([`super::caps`]), read-only rootfs, no_new_privs,
//! seccomp ([`super::seccomp`]), masked and read-only paths, oom_score_adj (clamped to what
//! the host allows), namespaces joined by path.
//!
//! The spec is plain JSON (`serde_json::Value`) written to `<bundle>/config.json`.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::caps::capabilities;
use super::devices::devices;
use super::mounts::{mounts, ImageVolume};
use super::resources::resources_json;
use super::seccomp;
use super::user::{user, UserFiles};
use crate::images::ImageConfig;
use crate::runtime::error::{invalid, Result};
use crate::runtime::types::{ContainerSpec, NsMode, PodRecord, Seccomp};

/// containerd's default masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];

/// containerd's default read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything the spec is built from.
pub struct SpecInput<'a> {
    /// Container id.
    pub id: &'a str,
    /// The pod.
    pub pod: &'a PodRecord,
    /// What was asked.
    pub spec: &'a ContainerSpec,
    /// The image's config.
    pub image: &'a ImageConfig,
    /// The image name to annotate.
    pub image_name: &'a str,
    /// The image's /etc/passwd and /etc/group.
    pub user_files: &'a UserFiles,
    /// cgroupfs path of the container.
    pub cgroup_path: &'a str,
    /// Pid namespace to join (pod-shared or target), if any.
    pub pid_ns: Option<PathBuf>,
    /// Lowest oom_score_adj the host lets us set.
    pub min_oom_score_adj: i64,
    /// The image volumes of `spec.mounts`, resolved.
    pub volumes: &'a [ImageVolume],
    /// Whether the host's cgroups are v2 only: an unprivileged container then gets its own
    /// cgroup namespace (as containerd and CRI-O do), so it sees its cgroup as `/`.
    pub unified_cgroups: bool,
}

/// Builds the spec.
pub fn build(i: &SpecInput<'_>) -> Result<Value> {
    let s = i.spec;
    let sec = &s.security;
    let privileged = sec.privileged;
    if privileged && !i.pod.spec.privileged {
        return Err(invalid(format!(
            "container {} is privileged but pod {} is not",
            s.name, i.pod.id
        )));
    }
    let args = command(s, i.image)?;
    let (uid, gid, groups) = user(&s.security, &i.image.user, i.user_files)?;
    let caps = capabilities(s)?;
    let mut env = merge_env(&i.image.env, &s.envs);
    let hostname = pod_hostname(i.pod);
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(0, format!("HOSTNAME={hostname}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let cwd = if !s.working_dir.is_empty() {
        s.working_dir.clone()
    } else if !i.image.working_dir.is_empty() {
        i.image.working_dir.clone()
    } else {
        "/".into()
    };
    if !cwd.starts_with('/') {
        return Err(invalid(format!("working dir {cwd:?} is not absolute")));
    }
    let r = &s.resources;
    let mut oom = r.oom_score_adj;
    if oom < i.min_oom_score_adj {
        oom = i.min_oom_score_adj;
    }
    let mut process = json!({
        "terminal": s.tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": groups},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": sec.no_new_privs,
        "oomScoreAdj": oom,
    });
    if privileged {
        process["noNewPrivileges"] = json!(false);
    }
    let (mounts, rootfs_propagation) = mounts(s, i.pod, i.volumes)?;
    let (devices, device_rules) = devices(s, privileged)?;
    let mut resources = json!({"devices": device_rules});
    resources_json(r, &mut resources);
    let mut linux = json!({
        "cgroupsPath": i.cgroup_path,
        "resources": resources,
        "namespaces": namespaces(i)?,
        "devices": devices,
        "sysctl": i.pod.spec.sysctls,
    });
    if let Some(p) = rootfs_propagation {
        linux["rootfsPropagation"] = json!(p);
    }
    if !privileged {
        let masked: Vec<&str> = if sec.masked_paths.is_empty() {
            MASKED_PATHS.to_vec()
        } else {
            sec.masked_paths.iter().map(String::as_str).collect()
        };
        let ro: Vec<&str> = if sec.readonly_paths.is_empty() {
            READONLY_PATHS.to_vec()
        } else {
            sec.readonly_paths.iter().map(String::as_str).collect()
        };
        linux["maskedPaths"] = json!(masked);
        linux["readonlyPaths"] = json!(ro);
        match &sec.seccomp {
            Seccomp::Unconfined => {}
            Seccomp::RuntimeDefault => {
                linux["seccomp"] = seccomp::default_profile(&caps);
            }
            Seccomp::Localhost(path) => {
                linux["seccomp"] = seccomp::read_localhost(path).map_err(invalid)?;
            }
        }
    }
    let p = i.pod;
    let mut annotations = json!({
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": s.name,
        (crust_shim_contract::SANDBOX_ID_ANNOTATION): p.id,
        "io.kubernetes.cri.sandbox-name": p.spec.name,
        "io.kubernetes.cri.sandbox-namespace": p.spec.namespace,
        "io.kubernetes.cri.sandbox-uid": p.spec.uid,
        "io.kubernetes.cri.image-name": i.image_name,
    });
    for (k, v) in &s.annotations {
        annotations[k] = json!(v);
    }
    Ok(json!({
        "ociVersion": "1.1.0",
        "process": process,
        "root": {"path": "rootfs", "readonly": sec.readonly_rootfs},
        "mounts": mounts,
        "annotations": annotations,
        "linux": linux,
    }))
}

/// The identity the process of spec `v` (built by [`build`]) starts with.
pub fn process_user(v: &Value) -> Option<crate::runtime::types::ProcessUser> {
    let u = &v["process"]["user"];
    let id = |x: &Value| x.as_u64().and_then(|n| u32::try_from(n).ok());
    Some(crate::runtime::types::ProcessUser {
        uid: id(&u["uid"])?,
        gid: id(&u["gid"])?,
        additional_gids: u["additionalGids"]
            .as_array()
            .map(|a| a.iter().filter_map(id).collect())
            .unwrap_or_default(),
    })
}

/// The pod's hostname: the asked one, else the node's (as containerd: a pod name may be
/// longer than a hostname can be); always the node's with host network.
pub fn pod_hostname(p: &PodRecord) -> String {
    if p.spec.namespaces.network == NsMode::Node || p.spec.hostname.is_empty() {
        return nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
    }
    p.spec.hostname.clone()
}

fn command(s: &ContainerSpec, img: &ImageConfig) -> Result<Vec<String>> {
    let args: Vec<String> = if !s.command.is_empty() {
        s.command.iter().chain(&s.args).cloned().collect()
    } else if !s.args.is_empty() {
        img.entrypoint.iter().chain(&s.args).cloned().collect()
    } else {
        img.entrypoint.iter().chain(&img.cmd).cloned().collect()
    };
    if args.is_empty() {
        return Err(invalid(format!(
            "no command specified for container {} (none in the request or the image)",
            s.name
        )));
    }
    Ok(args)
}

/// Image env, overridden key by key by the request's.
pub fn merge_env(image: &[String], extra: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = image.to_vec();
    // Where each name's first entry is: searching the list for every variable was
    // quadratic (100,000 variables in one request took 14 s of CPU on a worker).
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, e) in out.iter().enumerate() {
        if let Some((k, _)) = e.split_once('=') {
            at.entry(k.to_string()).or_insert(i);
        }
    }
    for (k, v) in extra {
        let kv = format!("{k}={v}");
        match at.get(k) {
            Some(&i) => out[i] = kv,
            None => {
                at.insert(k.clone(), out.len());
                out.push(kv);
            }
        }
    }
    out
}

fn namespaces(i: &SpecInput<'_>) -> Result<Vec<Value>> {
    let p = i.pod;
    let mut ns = vec![json!({"type": "mount"})];
    let with_path = |t: &str, path: &Option<PathBuf>| match path {
        Some(path) => json!({"type": t, "path": path}),
        None => json!({"type": t}),
    };
    if p.spec.namespaces.user.is_some() {
        let Some(u) = &p.userns else {
            return Err(invalid(format!(
                "pod {} has no pinned user namespace",
                p.id
            )));
        };
        // The pod's, joined by path (its maps are the pod's; the runtime writes none).
        ns.insert(0, json!({"type": "user", "path": u}));
    }
    if p.spec.namespaces.network != NsMode::Node {
        ns.push(with_path("network", &p.netns));
        ns.push(with_path("uts", &p.utsns));
    }
    let ipc = i.spec.security.namespaces.ipc;
    if p.spec.namespaces.ipc != NsMode::Node && ipc != NsMode::Node {
        ns.push(with_path("ipc", &p.ipcns));
    }
    let pid = i.spec.security.namespaces.pid;
    if pid != NsMode::Node {
        ns.push(with_path("pid", &i.pid_ns));
    }
    if i.unified_cgroups && !i.spec.security.privileged {
        ns.push(json!({"type": "cgroup"}));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env() {
        let e = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &[("A".into(), "2".into()), ("B".into(), "3".into())],
        );
        assert_eq!(e, ["PATH=/bin", "A=2", "B=3"]);
        // The first of repeated names is replaced; later requests override earlier ones.
        let e = merge_env(
            &["A=1".into(), "NOEQ".into(), "A=x".into()],
            &[("A".into(), "2".into()), ("A".into(), "3".into())],
        );
        assert_eq!(e, ["A=3", "NOEQ", "A=x"]);
    }

    /// 100,000 variables took 14 s of CPU (a linear search per variable); linear now.
    /// The bound is ~100 times what it takes here in a debug build.
    #[test]
    fn env_merge_of_100000_variables_is_not_quadratic() {
        let image: Vec<String> = (0..1000).map(|i| format!("I{i}=x")).collect();
        let extra: Vec<(String, String)> = (0..100_000)
            .map(|i| (format!("V{i}"), "y".into()))
            .collect();
        let t0 = std::time::Instant::now();
        let e = merge_env(&image, &extra);
        let took = t0.elapsed();
        assert_eq!(e.len(), 101_000);
        assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod table_tests;
