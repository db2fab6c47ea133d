//! The mounts of a container: the default kernel filesystems, the pod's hostname, hosts,
//! resolv.conf and /dev/shm (unless the request mounts over them) and the request's bind
//! mounts with their propagation, its image volumes (read-only overlays of an image's
//! layers, or a read-only bind of its one layer), read-only recursively when asked (OCI option `rro`,
//! which crust-runc, runc 1.1+ and crun apply with `mount_setattr(2)` and `AT_RECURSIVE`);
//! the request's bind mounts are idmapped to the pod's user namespace when it has one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::runtime::error::{invalid, Result};
use crate::runtime::types::{ContainerSpec, IdMapping, MountSpec, NsMode, PodRecord, Propagation};

/// The OCI `mounts` of container `s` in `pod`, and the rootfs propagation the user mounts
/// need (`rslave`/`rshared`), if any.
/// An image volume resolved to its image's layer directories (top first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVolume {
    /// Where it is mounted in the container.
    pub container_path: String,
    /// The image's committed layer directories, top first.
    pub layers: Vec<PathBuf>,
}

/// The OCI mount of image volume `v` asked by `x`: an overlay with the layers as its lower
/// directories and no upper one (read-only by construction, nothing copied), or for a
/// single-layer image a read-only bind of it.
fn image_mount(x: &MountSpec, v: &ImageVolume) -> Result<Value> {
    let mut opts: Vec<String> = vec!["ro".into(), "nosuid".into(), "nodev".into()];
    if x.recursive_read_only {
        opts.push("rro".into());
    }
    match v.layers.as_slice() {
        [] => Err(invalid(format!(
            "image volume {:?}: image {} has no layers",
            x.container_path, x.image
        ))),
        [one] => {
            let mut o = vec!["rbind".to_string(), "rprivate".into()];
            o.extend(opts);
            Ok(
                json!({"destination": x.container_path, "type": "bind", "source": one, "options": o}),
            )
        }
        many => {
            let lower: Vec<String> = many.iter().map(|p| p.display().to_string()).collect();
            if let Some(bad) = lower.iter().find(|p| p.contains([':', ','])) {
                return Err(invalid(format!(
                    "image volume {:?}: layer directory {bad} cannot be an overlay lower directory",
                    x.container_path
                )));
            }
            opts.push(format!("lowerdir={}", lower.join(":")));
            Ok(
                json!({"destination": x.container_path, "type": "overlay", "source": "overlay", "options": opts}),
            )
        }
    }
}

pub fn mounts(
    s: &ContainerSpec,
    pod: &PodRecord,
    volumes: &[ImageVolume],
) -> Result<(Vec<Value>, Option<&'static str>)> {
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
        if !x.image.is_empty() {
            let v = volumes
                .iter()
                .find(|v| v.container_path == x.container_path)
                .ok_or_else(|| {
                    invalid(format!(
                        "image volume {:?}: image {} was not resolved",
                        x.container_path, x.image
                    ))
                })?;
            m.push(image_mount(x, v)?);
            continue;
        }
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
        let mut opts = vec!["rbind", p, mode];
        if x.recursive_read_only {
            opts.push("rro");
        }
        let mut v = json!({"destination": x.container_path, "type": "bind", "source": x.host_path, "options": opts});
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

/// Whether this kernel has `mount_setattr(2)` (Linux 5.12+), which recursively read-only
/// mounts need; probed once.
pub fn recursive_read_only_supported() -> bool {
    static PROBE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROBE.get_or_init(|| {
        // SAFETY: mount_setattr with an invalid fd, a null path and a null attribute
        // pointer of size 0 reads and changes nothing; only its errno is looked at.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                -1,
                std::ptr::null::<libc::c_char>(),
                0,
                std::ptr::null::<u8>(),
                0,
            )
        };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
    })
}

/// A user mount must name an absolute container path and an existing host path; a
/// recursively read-only one must be read-only with private propagation (the CRI's rules)
/// on a kernel that has `mount_setattr(2)`.
pub fn check_mount(x: &MountSpec) -> Result<()> {
    if !x.image.is_empty() {
        if !x.host_path.is_empty() {
            return Err(invalid(format!(
                "mount {:?}: both host path {:?} and image {:?} are set",
                x.container_path, x.host_path, x.image
            )));
        }
        if x.propagation != Propagation::Private {
            return Err(invalid(format!(
                "image volume {:?}: propagation must be private (not {:?})",
                x.container_path, x.propagation
            )));
        }
        if !x.container_path.starts_with('/') {
            return Err(invalid(format!(
                "mount container path {:?} is not absolute",
                x.container_path
            )));
        }
        return Ok(());
    }
    if x.recursive_read_only {
        if !x.readonly {
            return Err(invalid(format!(
                "mount {:?}: recursive_read_only needs readonly",
                x.container_path
            )));
        }
        if x.propagation != Propagation::Private {
            return Err(invalid(format!(
                "mount {:?}: recursive_read_only needs private propagation (not {:?})",
                x.container_path, x.propagation
            )));
        }
        if !recursive_read_only_supported() {
            return Err(invalid(format!(
                "mount {:?}: recursive_read_only needs mount_setattr(2) (Linux 5.12+), which this kernel lacks",
                x.container_path
            )));
        }
    }
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
