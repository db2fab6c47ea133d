//! Mounting the rootfs containerd passes in CreateTaskRequest (`rootfs` mounts, usually
//! one overlay) at `<bundle>/rootfs`, and unmounting it at delete.
//!
//! An overlay with containerd's `uidmap=C:H:S` and `gidmap=C:H:S` options (a pod in its own
//! user namespace) gets its lower layers idmapped: each is a detached idmapped clone
//! (`crust_idmap`) passed to overlayfs as `/proc/self/fd/N`, so files stored as root in the
//! image show as the namespace's root (host id H) and no layer is chowned. The upper dir is
//! not idmapped (overlayfs creates its work files with the mounter's credentials, which such
//! a map would not cover); whoever prepares the snapshot makes its root owned by H.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use crust_idmap::IdMap;

use containerd_shim_protos::api::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Result, ShimError};

/// The MS_* flags an option word sets (`true`) or clears, from the table crust-runc uses.
fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    crust_cgroups::mount_flags::flag_word(opt).map(|(set, f)| (set, MsFlags::from_bits_retain(f)))
}

/// Replaces each `lowerdir=` layer of overlay options `data` by an idmapped clone
/// (`/proc/self/fd/N`, the fds returned must outlive the mount call) when `uidmap=`/`gidmap=`
/// are among them; those two options are removed.
fn idmap_lowerdirs(data: &mut Vec<String>) -> Result<Vec<OwnedFd>> {
    let bad = |message: String| ShimError::InvalidRequest(format!("rootfs mount: {message}"));
    let mut maps = [None, None];
    data.retain(|o| {
        for (i, key) in ["uidmap=", "gidmap="].iter().enumerate() {
            if let Some(v) = o.strip_prefix(key) {
                maps[i] = Some(v.to_string());
                return false;
            }
        }
        true
    });
    let (uids, gids) = match maps {
        [None, None] => return Ok(Vec::new()),
        [Some(u), Some(g)] => (u, g),
        _ => return Err(bad("uidmap and gidmap go together".into())),
    };
    let parse = |v: &str| -> Result<Vec<IdMap>> {
        v.split(',')
            .map(|m| m.parse::<IdMap>().map_err(|e| bad(e.to_string())))
            .collect()
    };
    let ns = crust_idmap::userns_for(&parse(&uids)?, &parse(&gids)?)?;
    let mut fds = Vec::new();
    for o in data.iter_mut() {
        let Some(layers) = o.strip_prefix("lowerdir=") else {
            continue;
        };
        let mut mapped = Vec::new();
        for layer in layers.split(':') {
            let fd = crust_idmap::clone_idmapped(Path::new(layer), ns.as_fd(), false)?;
            mapped.push(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            fds.push(fd);
        }
        *o = format!("lowerdir={}", mapped.join(":"));
    }
    Ok(fds)
}

/// Mounts `mounts` in order on `target`. On failure, what was mounted is unmounted.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(target).map_err(|e| ShimError::io("create rootfs", target, e))?;
    for (i, m) in mounts.iter().enumerate() {
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        for o in &m.options {
            match flag(o) {
                Some((true, f)) => flags |= f,
                Some((false, f)) => flags &= !f,
                None => data.push(o.clone()),
            }
        }
        let layers = match idmap_lowerdirs(&mut data) {
            Ok(fds) => fds,
            Err(e) => {
                for _ in 0..i {
                    let _ = umount2(target, MntFlags::MNT_DETACH);
                }
                return Err(e);
            }
        };
        let data = data.join(",");
        let fstype = if m.type_.is_empty() {
            None
        } else {
            Some(m.type_.as_str())
        };
        let r = mount(
            Some(m.source.as_str()),
            target,
            fstype,
            flags,
            if data.is_empty() {
                None
            } else {
                Some(data.as_str())
            },
        );
        drop(layers);
        if let Err(e) = r {
            for _ in 0..i {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(ShimError::Mount {
                path: target.to_path_buf(),
                source: e,
            });
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (ignores "not mounted").
pub fn unmount_rootfs(target: &Path) {
    for _ in 0..8 {
        if umount2(target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}
