//! The devices of a container: the request's device nodes (and, privileged, every device
//! node of the host) with their cgroup device rules.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

use crate::runtime::error::{invalid, Result};
use crate::runtime::types::ContainerSpec;

/// The OCI `linux.devices` of `s` and the `linux.resources.devices` rules.
pub fn devices(s: &ContainerSpec, privileged: bool) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut devs = Vec::new();
    let mut rules = vec![json!({"allow": privileged, "access": "rwm"})];
    for d in &s.devices {
        // The runtime refuses it too, but only once the shim runs it: as an INTERNAL error.
        if !d.container_path.starts_with('/') || d.container_path.split('/').any(|c| c == "..") {
            return Err(invalid(format!(
                "device {} container path {:?} is not an absolute path without \"..\"",
                d.host_path, d.container_path
            )));
        }
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
