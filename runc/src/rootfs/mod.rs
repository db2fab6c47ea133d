//! The container root filesystem: mounts, devices, path resolution inside the root,
//! pivot_root, masked and read-only paths.
//!
//! (First cut: the public API only; bodies are filled in by the "rootfs" helper.)

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// How the rootfs is prepared and entered.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// `--no-pivot`: MS_MOVE the rootfs onto "/" and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has its own user namespace (devices are bind-mounted from the host,
    /// sysfs without a netns is rbound from the host).
    pub in_user_ns: bool,
}

/// Errors of rootfs preparation.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// Placeholder until the module is implemented.
    #[error("rootfs: {0} not implemented yet")]
    NotImplemented(&'static str),
    /// A path could not be opened inside the root.
    #[error("open {path:?} inside the root")]
    OpenInRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Prepares the rootfs in the container's new mount namespace, before pivot.
pub fn prepare(_spec: &Spec, _rootfs: &Path, _opts: &RootfsOptions) -> Result<(), RootfsError> {
    Err(RootfsError::NotImplemented("prepare"))
}

/// Bind-mounts the console pty slave onto `<rootfs>/dev/console`. Before pivot.
pub fn mount_console(_rootfs: &Path, _pty_slave: &Path) -> Result<(), RootfsError> {
    Err(RootfsError::NotImplemented("mount_console"))
}

/// pivot_root into rootfs (or MS_MOVE + chroot with no_pivot), detach the old root, chdir("/").
pub fn pivot(_rootfs: &Path, _opts: &RootfsOptions) -> Result<(), RootfsError> {
    Err(RootfsError::NotImplemented("pivot"))
}

/// After pivot: masked paths, read-only paths, read-only root when `root.readonly`.
pub fn finalize(_spec: &Spec) -> Result<(), RootfsError> {
    Err(RootfsError::NotImplemented("finalize"))
}

/// Opens `path`, interpreted inside `root`, never leaving it. `flags` are open(2) flags.
pub fn open_in_root(_root: &Path, path: &Path, _flags: i32) -> Result<OwnedFd, RootfsError> {
    Err(RootfsError::OpenInRoot {
        path: path.to_path_buf(),
        source: std::io::Error::other("not implemented yet"),
    })
}
