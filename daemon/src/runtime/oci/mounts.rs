//! The mounts of a container: the default kernel filesystems, the pod's hostname, hosts,
//! resolv.conf and /dev/shm (unless the request mounts over them) and the request's bind
//! mounts with their propagation, idmapped to the pod's user namespace when it has one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::runtime::error::{invalid, Result};
use crate::runtime::types::{ContainerSpec, IdMapping, MountSpec, NsMode, PodRecord, Propagation};

/// The OCI `mounts` of container `s` in `pod`, and the rootfs propagation the user mounts
/// need (`rslave`/`rshared`), if any.
pub fn mounts(s: &ContainerSpec, pod: &PodRecord) -> Result<(Vec<Value>, Option<&'static str>)> {
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
    let dir = &pod.dir;
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
        let src = if pod.spec.namespaces.ipc == NsMode::Node {
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
        let mut v = json!({"destination": x.container_path, "type": "bind", "source": x.host_path, "options": ["rbind", p, mode]});
        if let Some(u) = &pod.spec.namespaces.user {
            // Volumes show their files to the pod's user namespace as the host sees them:
            // stored as id N, seen as N inside (an idmapped mount, as containerd 2 does).
            let map = |m: &IdMapping| json!([{"containerID": m.container_id, "hostID": m.host_id, "size": m.size}]);
            v["uidMappings"] = map(&u.uid);
            v["gidMappings"] = map(&u.gid);
        }
        m.push(v);
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
