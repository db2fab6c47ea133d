//! TEMPORARY stand-in while `rootfs` is still a stub in main: when the real function
//! reports "not implemented", do the bare minimum (bind the rootfs, mount /proc, chroot) so
//! the lifecycle can be exercised. Deleted once the rootfs helper's module lands.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::rootfs::{self, RootfsError, RootfsOptions};

fn stub(e: &RootfsError) -> bool {
    e.to_string().contains("not implemented")
}

fn io(e: nix::Error) -> RootfsError {
    RootfsError::OpenInRoot {
        path: "/".into(),
        source: e.into(),
    }
}

pub fn prepare(
    spec: &oci_spec::runtime::Spec,
    root: &Path,
    o: &RootfsOptions,
) -> Result<(), RootfsError> {
    match rootfs::prepare(spec, root, o) {
        Err(e) if stub(&e) => {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .map_err(io)?;
            mount(
                Some(root),
                root,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(io)?;
            let _ = std::fs::create_dir_all(root.join("proc"));
            mount(
                Some("proc"),
                &root.join("proc"),
                Some("proc"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(io)?;
            Ok(())
        }
        r => r,
    }
}

pub fn pivot(root: &Path, o: &RootfsOptions) -> Result<(), RootfsError> {
    match rootfs::pivot(root, o) {
        Err(e) if stub(&e) => {
            nix::unistd::chroot(root).map_err(io)?;
            nix::unistd::chdir("/").map_err(io)
        }
        r => r,
    }
}

pub fn finalize(spec: &oci_spec::runtime::Spec) -> Result<(), RootfsError> {
    match rootfs::finalize(spec) {
        Err(e) if stub(&e) => Ok(()),
        r => r,
    }
}
