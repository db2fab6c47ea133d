//! Mounting the rootfs containerd passes in CreateTaskRequest (`rootfs` mounts, usually
//! one overlay) at `<bundle>/rootfs`, and unmounting it at delete.

use std::path::Path;

use containerd_shim_protos::api::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Result, ShimError};

/// The MS_* flags an option word sets (`true`) or clears, from the table crust-runc uses.
fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    crust_cgroups::mount_flags::flag_word(opt).map(|(set, f)| (set, MsFlags::from_bits_retain(f)))
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
                None => data.push(o.as_str()),
            }
        }
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
