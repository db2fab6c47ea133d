//! The OCI runtime spec of a container, built from the image config and the container's
//! [`ContainerSpec`] the way containerd's CRI plugin builds it: command/args/env/workdir
//! merging, the user (uid, or a name from the image's `/etc/passwd`, groups, supplemental
//! groups), default and user mounts with propagation, devices, resources, capabilities
//! over the default set, read-only rootfs, no_new_privs, seccomp, masked and read-only
//! paths, oom_score_adj (clamped to what the host allows), namespaces joined by path.
//!
//! The spec is plain JSON (`serde_json::Value`) written to `<bundle>/config.json`.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::images::ImageConfig;
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::types::{ContainerSpec, MountSpec, NsMode, PodRecord, Propagation, Seccomp};

/// containerd's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux knows (up to 5.x).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

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
    /// Directories of the image's layers, top first (for /etc/passwd, /etc/group).
    pub layers: &'a [PathBuf],
    /// cgroupfs path of the container.
    pub cgroup_path: &'a str,
    /// Pid namespace to join (pod-shared or target), if any.
    pub pid_ns: Option<PathBuf>,
    /// Lowest oom_score_adj the host lets us set.
    pub min_oom_score_adj: i64,
}

fn invalid(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::Invalid(msg.into())
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
    let (uid, gid, groups) = user(i)?;
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
    let (mounts, rootfs_propagation) = mounts(i)?;
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
                linux["seccomp"] = crate::runtime::oci::seccomp::default_profile(&caps);
            }
            Seccomp::Localhost(path) => {
                let text = std::fs::read(path)
                    .map_err(|e| invalid(format!("seccomp profile {path} cannot be read: {e}")))?;
                let v: Value = serde_json::from_slice(&text).map_err(|e| {
                    invalid(format!("seccomp profile {path} is not valid JSON: {e}"))
                })?;
                linux["seccomp"] = v;
            }
        }
    }
    let p = i.pod;
    let mut annotations = json!({
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": s.name,
        "io.kubernetes.cri.sandbox-id": p.id,
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

/// The pod's hostname: the asked one, else the pod name (host's with host network).
pub fn pod_hostname(p: &PodRecord) -> String {
    if p.spec.namespaces.network == NsMode::Node {
        return nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
    }
    if p.spec.hostname.is_empty() {
        p.spec.name.clone()
    } else {
        p.spec.hostname.clone()
    }
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
    for (k, v) in extra {
        let kv = format!("{k}={v}");
        match out
            .iter_mut()
            .find(|e| e.split_once('=').map(|(a, _)| a) == Some(k.as_str()))
        {
            Some(e) => *e = kv,
            None => out.push(kv),
        }
    }
    out
}

/// Every capability this process may hand on (its bounding set; all of [`ALL_CAPS`] if
/// unreadable), as containerd's WithAllCurrentCapabilities: asking for one outside it
/// makes the runtime's capset fail (e.g. CAP_SYS_RESOURCE where root lacks it).
fn current_caps() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn capabilities(s: &ContainerSpec) -> Result<Vec<String>> {
    if s.security.privileged {
        return Ok(current_caps());
    }
    let norm = |c: &str| -> Result<String> {
        let up = c.to_ascii_uppercase();
        let name = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if name == "CAP_ALL" || ALL_CAPS.contains(&name.as_str()) {
            Ok(name)
        } else {
            Err(invalid(format!("unknown capability {c:?}")))
        }
    };
    let add: Vec<String> = s
        .security
        .add_capabilities
        .iter()
        .map(|c| norm(c))
        .collect::<Result<_>>()?;
    let drop: Vec<String> = s
        .security
        .drop_capabilities
        .iter()
        .map(|c| norm(c))
        .collect::<Result<_>>()?;
    let mut caps: BTreeSet<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    if add.iter().any(|c| c == "CAP_ALL") {
        caps = current_caps().into_iter().collect();
    }
    if drop.iter().any(|c| c == "CAP_ALL") {
        caps.clear();
    }
    for c in add.into_iter().filter(|c| c != "CAP_ALL") {
        caps.insert(c);
    }
    for c in drop.iter().filter(|c| *c != "CAP_ALL") {
        caps.remove(c);
    }
    // Keep the kernel's order for readability.
    Ok(ALL_CAPS
        .iter()
        .filter(|c| caps.contains(**c))
        .map(|c| c.to_string())
        .collect())
}

/// Reads `etc/<file>` from the topmost layer that has it.
fn image_file(layers: &[PathBuf], file: &str) -> String {
    layers
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join("etc").join(file)).ok())
        .unwrap_or_default()
}

/// `(name, uid, gid)` entries of passwd.
fn passwd(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some((f[0].to_string(), f[2].parse().ok()?, f[3].parse().ok()?))
        })
        .collect()
}

/// `(name, gid, members)` entries of group.
fn groups(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

fn user(i: &SpecInput<'_>) -> Result<(u32, u32, Vec<u32>)> {
    let sec = &i.spec.security;
    let pw = passwd(&image_file(i.layers, "passwd"));
    let gr = groups(&image_file(i.layers, "group"));
    let to_u32 = |v: i64, what: &str| -> Result<u32> {
        u32::try_from(v).map_err(|_| invalid(format!("{what} {v} is out of range")))
    };
    let (uid, mut gid, name) = if !sec.run_as_username.is_empty() {
        let (n, u, g) = pw
            .iter()
            .find(|(n, _, _)| *n == sec.run_as_username)
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "user {:?} not found in the image's /etc/passwd",
                    sec.run_as_username
                ))
            })?;
        (u, g, Some(n))
    } else if let Some(u) = sec.run_as_user {
        let u = to_u32(u, "runAsUser")?;
        let e = pw.iter().find(|(_, pu, _)| *pu == u);
        (u, e.map(|e| e.2).unwrap_or(0), e.map(|e| e.0.clone()))
    } else {
        let spec = i.image.user.as_str();
        let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
        let (uid, gid, name) = if u.is_empty() {
            (0, 0, Some("root".to_string()))
        } else if let Ok(n) = u.parse::<u32>() {
            let e = pw.iter().find(|(_, pu, _)| *pu == n);
            (n, e.map(|e| e.2).unwrap_or(0), e.map(|e| e.0.clone()))
        } else {
            let e = pw
                .iter()
                .find(|(pn, _, _)| pn == u)
                .ok_or_else(|| invalid(format!("image user {u:?} not found in /etc/passwd")))?;
            (e.1, e.2, Some(e.0.clone()))
        };
        let gid = if g.is_empty() {
            gid
        } else if let Ok(n) = g.parse::<u32>() {
            n
        } else {
            gr.iter()
                .find(|(n, _, _)| n == g)
                .map(|e| e.1)
                .ok_or_else(|| invalid(format!("image group {g:?} not found in /etc/group")))?
        };
        (uid, gid, name)
    };
    if let Some(g) = sec.run_as_group {
        gid = to_u32(g, "runAsGroup")?;
    }
    let mut extra: Vec<u32> = Vec::new();
    if let Some(n) = &name {
        for (_, g, members) in &gr {
            if members.iter().any(|m| m == n) && !extra.contains(g) {
                extra.push(*g);
            }
        }
    }
    for g in &sec.supplemental_groups {
        let g = to_u32(*g, "supplementalGroup")?;
        if !extra.contains(&g) {
            extra.push(g);
        }
    }
    Ok((uid, gid, extra))
}

fn mounts(i: &SpecInput<'_>) -> Result<(Vec<Value>, Option<&'static str>)> {
    let s = i.spec;
    let privileged = s.security.privileged;
    let sys_opts: Vec<&str> = if privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let user_dst: BTreeSet<&str> = s.mounts.iter().map(|x| x.container_path.as_str()).collect();
    let dir = &i.pod.dir;
    let ro = if s.security.readonly_rootfs {
        "ro"
    } else {
        "rw"
    };
    for (dst, file) in [
        ("/etc/hostname", "hostname"),
        ("/etc/hosts", "hosts"),
        ("/etc/resolv.conf", "resolv.conf"),
    ] {
        if !user_dst.contains(dst) {
            m.push(json!({"destination": dst, "type": "bind", "source": dir.join(file), "options": ["rbind", "rprivate", ro]}));
        }
    }
    if !user_dst.contains("/dev/shm") {
        let src = if i.pod.spec.namespaces.ipc == NsMode::Node {
            PathBuf::from("/dev/shm")
        } else {
            dir.join("shm")
        };
        m.push(json!({"destination": "/dev/shm", "type": "bind", "source": src, "options": ["rbind", "rprivate", "rw"]}));
    }
    let mut prop = None;
    for x in &s.mounts {
        check_mount(x)?;
        let p = match x.propagation {
            Propagation::Private => "rprivate",
            Propagation::HostToContainer => {
                if prop.is_none() {
                    prop = Some("rslave");
                }
                "rslave"
            }
            Propagation::Bidirectional => {
                prop = Some("rshared");
                "rshared"
            }
        };
        let mode = if x.readonly { "ro" } else { "rw" };
        m.push(json!({"destination": x.container_path, "type": "bind", "source": x.host_path, "options": ["rbind", p, mode]}));
    }
    Ok((m, prop))
}

/// A user mount must name an absolute container path and an existing host path.
pub fn check_mount(x: &MountSpec) -> Result<()> {
    if !x.container_path.starts_with('/') {
        return Err(invalid(format!(
            "mount container path {:?} is not absolute",
            x.container_path
        )));
    }
    if !Path::new(&x.host_path).is_absolute() {
        return Err(invalid(format!(
            "mount host path {:?} is not absolute",
            x.host_path
        )));
    }
    if std::fs::symlink_metadata(&x.host_path).is_err() {
        return Err(invalid(format!(
            "mount host path {} does not exist",
            x.host_path
        )));
    }
    Ok(())
}

fn devices(s: &ContainerSpec, privileged: bool) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut devs = Vec::new();
    let mut rules = vec![json!({"allow": privileged, "access": "rwm"})];
    for d in &s.devices {
        let md = std::fs::metadata(&d.host_path)
            .map_err(|e| invalid(format!("device {} cannot be found: {e}", d.host_path)))?;
        let ft = md.file_type();
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            return Err(invalid(format!("{} is not a device", d.host_path)));
        };
        let rdev = md.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        let perms = if d.permissions.is_empty() {
            "rwm".to_string()
        } else {
            d.permissions.clone()
        };
        if !perms.chars().all(|c| "rwm".contains(c)) {
            return Err(invalid(format!(
                "device {} permissions {perms:?} are not a subset of rwm",
                d.host_path
            )));
        }
        devs.push(
            json!({"path": d.container_path, "type": kind, "major": major, "minor": minor,
            "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid()}),
        );
        rules.push(
            json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
        );
    }
    if privileged {
        // As containerd's WithHostDevices: every device node of the host, at its host
        // path (those the CRI config maps explicitly win); the rule above allows all.
        let taken: BTreeSet<String> = s.devices.iter().map(|d| d.container_path.clone()).collect();
        let mut host = Vec::new();
        host_devices(Path::new("/dev"), &mut host);
        for (path, kind, md) in host {
            if taken.contains(&path) {
                continue;
            }
            let rdev = md.rdev();
            devs.push(
                json!({"path": path, "type": kind, "major": libc::major(rdev),
                "minor": libc::minor(rdev), "fileMode": md.mode() & 0o7777,
                "uid": md.uid(), "gid": md.gid()}),
            );
        }
    }
    Ok((devs, rules))
}

/// Device nodes under `dir` (recursively), skipping what containerd skips: the
/// container's own pts/shm/mqueue/fd, LXC's dirs and /dev/console.
fn host_devices(dir: &Path, out: &mut Vec<(String, &'static str, std::fs::Metadata)>) {
    const SKIP_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_dir() {
            let name = e.file_name();
            if !SKIP_DIRS.iter().any(|s| name == *s) {
                host_devices(&path, out);
            }
            continue;
        }
        if path == Path::new("/dev/console") {
            continue;
        }
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        out.push((path.display().to_string(), kind, md));
    }
}

/// The OCI `linux.resources` fields of `r` (device rules untouched).
pub fn resources_json(r: &crate::runtime::types::Resources, out: &mut Value) {
    let mut mem = serde_json::Map::new();
    if r.memory_limit_in_bytes > 0 {
        mem.insert("limit".into(), json!(r.memory_limit_in_bytes));
        let swap = if r.memory_swap_limit_in_bytes > 0 {
            r.memory_swap_limit_in_bytes
        } else {
            r.memory_limit_in_bytes
        };
        mem.insert("swap".into(), json!(swap));
    }
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    if !mem.is_empty() {
        out["memory"] = Value::Object(mem);
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if !r.hugepage_limits.is_empty() {
        out["hugepageLimits"] = r
            .hugepage_limits
            .iter()
            .map(|(k, v)| json!({"pageSize": k, "limit": v}))
            .collect();
    }
    if !r.unified.is_empty() {
        out["unified"] = json!(r.unified);
    }
}

fn namespaces(i: &SpecInput<'_>) -> Result<Vec<Value>> {
    let p = i.pod;
    let mut ns = vec![json!({"type": "mount"})];
    let with_path = |t: &str, path: &Option<PathBuf>| match path {
        Some(path) => json!({"type": t, "path": path}),
        None => json!({"type": t}),
    };
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
    Ok(ns)
}

/// The lowest oom_score_adj this process may give its children: its own unless it
/// holds CAP_SYS_RESOURCE.
pub fn min_oom_score_adj() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if cap_eff & (1 << 24) != 0 {
        return -1000;
    }
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_groups() {
        let e = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &[("A".into(), "2".into()), ("B".into(), "3".into())],
        );
        assert_eq!(e, ["PATH=/bin", "A=2", "B=3"]);
        let g = groups("wheel:x:10:alice,bob\nstaff:x:50:\n");
        assert_eq!(g[0].2, ["alice", "bob"]);
        assert_eq!(
            passwd("root:x:0:0::/:/bin/sh\nbad\n"),
            [("root".into(), 0, 0)]
        );
    }

    #[test]
    fn caps_add_drop() {
        let mut s = ContainerSpec::default();
        s.security.drop_capabilities = vec!["ALL".into()];
        s.security.add_capabilities = vec!["net_admin".into()];
        assert_eq!(capabilities(&s).unwrap(), ["CAP_NET_ADMIN"]);
        s.security.add_capabilities = vec!["bogus".into()];
        assert!(capabilities(&s).is_err());
        s.security.add_capabilities.clear();
        s.security.drop_capabilities = vec!["CAP_KILL".into()];
        let c = capabilities(&s).unwrap();
        assert!(!c.contains(&"CAP_KILL".to_string()) && c.contains(&"CAP_CHOWN".to_string()));
    }
}
