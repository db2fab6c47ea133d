//! The container root filesystem: mounts, devices, path resolution inside the root,
//! pivot_root, masked and read-only paths (what runc's rootfs_linux.go does).
//!
//! Call order, in the container's new mount namespace (and user namespace, if any), after
//! the process joined its cgroups: [`prepare`] → [`mount_console`] (terminals) → [`pivot`]
//! → [`finalize`].
//!
//! A container without a mount namespace of its own inherits the runtime's (runtime-spec):
//! then [`prepare`] leaves the propagation of "/" and the rootfs alone and only mounts inside
//! the rootfs, [`pivot`] is a chroot, and `delete` takes those mounts down again
//! ([`unmount_under`]). Settings that would change mounts outside the rootfs
//! (`root.readonly`, `linux.rootfsPropagation`) are refused then.
//!
//! Invariants:
//! - Every path inside the rootfs (mount destinations, devices, /dev/console, masked and
//!   read-only paths) is resolved inside the root, never through a symlink out of it
//!   ([`open_in_root`]: openat2 `RESOLVE_IN_ROOT`, or an equivalent userspace walk), and
//!   mounts target `/proc/self/fd/N` of the resolved object so no race can redirect them.
//! - [`prepare`] validates the whole spec (mount options, devices, propagation) before it
//!   changes anything; a bad entry gives an error naming it.
//! - Nothing here undoes mounts on failure: they all live in the container's private mount
//!   namespace, which the kernel tears down with the failed container process.

mod cgroupfs;
mod copyup;
mod devices;
mod idmap;
mod mount;
use crust_cgroups::mountinfo;
mod options;
mod paths;
mod pivot;
mod resolve;

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use options::OptionError;
use resolve::Resolver;

/// How the rootfs is prepared and entered.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// `--no-pivot`: MS_MOVE the rootfs onto "/" and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has its own user namespace (devices are bind-mounted from the host,
    /// sysfs without a netns is rbound from the host).
    pub in_user_ns: bool,
    /// The container has no mount namespace of its own: it works in the runtime's.
    pub runtime_mount_ns: bool,
    /// Detached idmapped clones made by [`prepare_idmapped`], by mount index (the caller
    /// keeps the fds open until [`prepare`] returns).
    pub idmapped: std::collections::HashMap<usize, std::os::fd::RawFd>,
}

/// The clones of the bind mounts of `spec` that have uid/gid mappings (idmapped) and, for a
/// container in a user namespace (`in_userns`), of every other bind mount; by mount index.
/// Must run with the host's privileges, before joining the container's user namespace; see
/// [`idmap`].
pub fn prepare_idmapped(
    spec: &Spec,
    in_userns: bool,
) -> Result<std::collections::HashMap<usize, std::os::fd::OwnedFd>, RootfsError> {
    idmap::prepare(spec, in_userns)
}

/// Errors of rootfs preparation. Variants name the failed operation and carry the path
/// (container paths are as written in the spec) or `mounts[index]`.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The rootfs directory is missing or not a directory.
    #[error("rootfs {path:?}")]
    Rootfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A setting needs the container's own mount namespace.
    #[error("{0} needs a mount namespace (linux.namespaces has none, so the container shares the runtime's)")]
    NeedsMountNs(&'static str),
    /// `linux.rootfsPropagation` is not a propagation word.
    #[error("linux.rootfsPropagation {0:?} is not one of shared, slave, private, unbindable (or r-prefixed)")]
    InvalidRootfsPropagation(String),
    /// The runtime did not confirm moving the process into its cgroup.
    #[error("joining the container's cgroup: {0}")]
    JoinCgroup(String),
    /// The idmapped clone of a bind mount's source could not be made.
    #[error("mounts[{index}]: clone {path:?}: {reason}")]
    Idmap {
        index: usize,
        path: PathBuf,
        reason: String,
    },
    /// A mount entry is invalid.
    #[error("mounts[{index}] ({destination:?}): {reason}")]
    InvalidMount {
        index: usize,
        destination: PathBuf,
        reason: String,
    },
    /// A `linux.devices` entry is invalid.
    #[error("linux.devices[{index}] ({path:?}): {reason}")]
    InvalidDevice {
        index: usize,
        path: PathBuf,
        reason: String,
    },
    /// Changing the propagation of a mount failed.
    #[error("set propagation of {path:?}")]
    Propagation {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Binding the rootfs onto itself failed.
    #[error("bind rootfs {path:?} onto itself")]
    BindRootfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A mount destination could not be resolved or created inside the root.
    #[error("mounts[{index}]: destination {destination:?} inside the root")]
    MountDestination {
        index: usize,
        destination: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bind mount source could not be opened.
    #[error("mounts[{index}]: source {path:?}")]
    MountSource {
        index: usize,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A mount(2) call for a mount entry failed.
    #[error("mounts[{index}]: {what} on {destination:?}")]
    Mount {
        index: usize,
        destination: PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A device node could not be created.
    #[error("create device {path:?}")]
    CreateDevice {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A /dev symlink could not be created.
    #[error("create symlink {path:?}")]
    Symlink {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Mounting the console failed.
    #[error("bind console {pty:?} onto /dev/console")]
    Console {
        pty: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A step of pivot_root / MS_MOVE failed.
    #[error("enter rootfs: {step}")]
    Pivot {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Making a path read-only failed.
    #[error("make {path:?} read-only")]
    ReadonlyPath {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Masking a path failed.
    #[error("mask {path:?}")]
    MaskPath {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A path could not be opened inside the root.
    #[error("open {path:?} inside the root")]
    OpenInRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Parses `linux.rootfsPropagation`.
fn rootfs_propagation(spec: &Spec) -> Result<Option<libc::c_ulong>, RootfsError> {
    let Some(word) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    else {
        return Ok(None);
    };
    if word.is_empty() {
        return Ok(None);
    }
    options::propagation_word(word)
        .map(Some)
        .ok_or_else(|| RootfsError::InvalidRootfsPropagation(word.to_string()))
}

fn has_namespace(spec: &Spec, kind: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == kind))
}

/// True when a mount entry is a bind mount onto /dev (then /dev is not populated).
fn dev_is_bound(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        let fstype = m.typ().as_deref();
        let opts = options::parse(fstype, m.options().as_deref().unwrap_or_default());
        opts.is_ok_and(|o| o.is_bind()) && is_dev(m.destination())
    })
}

fn is_dev(p: &Path) -> bool {
    let comps: Vec<_> = p
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    comps.len() == 2 && comps[1].as_os_str() == "dev"
}

/// Validates everything [`prepare`] will use, before anything changes.
fn validate(spec: &Spec, opts: &RootfsOptions) -> Result<(), RootfsError> {
    if rootfs_propagation(spec)?.is_some() && opts.runtime_mount_ns {
        return Err(RootfsError::NeedsMountNs("linux.rootfsPropagation"));
    }
    let readonly = spec.root().as_ref().and_then(|r| r.readonly());
    if readonly == Some(true) && opts.runtime_mount_ns {
        return Err(RootfsError::NeedsMountNs("root.readonly"));
    }
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let destination = m.destination();
        let invalid = |reason: String| RootfsError::InvalidMount {
            index,
            destination: destination.clone(),
            reason,
        };
        if !destination.is_absolute() {
            return Err(invalid("destination must be an absolute path".into()));
        }
        let fstype = m.typ().as_deref().filter(|t| !t.is_empty());
        let opts = options::parse(fstype, m.options().as_deref().unwrap_or_default())
            .map_err(|e| invalid(e.to_string()))?;
        if opts.is_bind() && m.source().is_none() {
            return Err(invalid("bind mount without a source".into()));
        }
        if opts.idmap.is_some() && !idmap::wants(m) {
            return Err(invalid(
                "idmap/ridmap without uidMappings/gidMappings".into(),
            ));
        }
        if idmap::wants(m) && !opts.is_bind() {
            return Err(invalid(
                "uidMappings/gidMappings are only supported on bind mounts".into(),
            ));
        }
        if !opts.is_bind() && fstype.is_none() {
            return Err(invalid("mount without a type".into()));
        }
    }
    devices::validate(spec)
}

/// Prepares the rootfs in the container's new mount namespace, before pivot: applies the
/// root propagation, binds the rootfs onto itself, mounts every `spec.mounts` entry and
/// populates /dev (unless /dev is a bind mount).
/// `before_cgroup_mount` runs once before the first `cgroup`/`cgroup2` mount, which reads the
/// process's cgroup membership (see [`crate::sync`]).
pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    opts: &RootfsOptions,
    before_cgroup_mount: &mut dyn FnMut() -> Result<(), RootfsError>,
) -> Result<(), RootfsError> {
    prepare_inner(spec, rootfs, opts, Resolver::Kernel, before_cgroup_mount)
}

#[cfg(test)]
fn prepare_with(
    spec: &Spec,
    rootfs: &Path,
    opts: &RootfsOptions,
    resolver: Resolver,
) -> Result<(), RootfsError> {
    prepare_inner(spec, rootfs, opts, resolver, &mut || Ok(()))
}

fn prepare_inner(
    spec: &Spec,
    rootfs: &Path,
    opts: &RootfsOptions,
    resolver: Resolver,
    before_cgroup_mount: &mut dyn FnMut() -> Result<(), RootfsError>,
) -> Result<(), RootfsError> {
    validate(spec, opts)?;
    let rootfs = std::fs::canonicalize(rootfs).map_err(|source| RootfsError::Rootfs {
        path: rootfs.to_path_buf(),
        source,
    })?;
    if !rootfs.is_dir() {
        return Err(RootfsError::Rootfs {
            path: rootfs,
            source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    if !opts.runtime_mount_ns {
        enter_own_mount_ns(spec, &rootfs)?;
    }
    let root_fd = resolve::open_dir_path(&rootfs).map_err(|source| RootfsError::Rootfs {
        path: rootfs.clone(),
        source,
    })?;
    let ctx = mount::MountCtx {
        root_fd: &root_fd,
        resolver,
        in_user_ns: opts.in_user_ns,
        has_netns: has_namespace(spec, LinuxNamespaceType::Network),
        has_cgroupns: has_namespace(spec, LinuxNamespaceType::Cgroup),
        idmapped: &opts.idmapped,
    };
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            before_cgroup_mount()?;
        }
        mount::mount_entry(&ctx, index, m)?;
    }
    if !dev_is_bound(spec) {
        devices::create_all(spec, &root_fd, resolver, opts.in_user_ns)?;
        devices::setup_ptmx(&root_fd, resolver)?;
        devices::create_symlinks(&root_fd, resolver)?;
    }
    Ok(())
}

/// In the container's own mount namespace: the propagation of "/" (rslave, or the requested
/// one; an unbindable "/" only after pivot, as the rootfs self-bind needs a bindable
/// parent), a private parent, and the rootfs bound onto itself (pivot_root needs a mount).
fn enter_own_mount_ns(spec: &Spec, rootfs: &Path) -> Result<(), RootfsError> {
    let flag = match rootfs_propagation(spec)? {
        Some(f) if f & libc::MS_UNBINDABLE != 0 => libc::MS_PRIVATE | (f & libc::MS_REC),
        Some(f) => f,
        None => libc::MS_SLAVE | libc::MS_REC,
    };
    mount::sys_mount(None, OsStr::new("/"), None, flag, None).map_err(|source| {
        RootfsError::Propagation {
            path: "/".into(),
            source,
        }
    })?;
    make_parent_private(rootfs)?;
    mount::sys_mount(
        Some(rootfs.as_os_str()),
        rootfs.as_os_str(),
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|source| RootfsError::BindRootfs {
        path: rootfs.to_path_buf(),
        source,
    })
}

/// Makes the mount holding `rootfs` private when it is shared: the self-bind must not
/// propagate to other namespaces, and pivot_root refuses a shared parent.
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let mounts = mountinfo::read_self().map_err(|source| RootfsError::Propagation {
        path: rootfs.to_path_buf(),
        source,
    })?;
    let parent = mounts
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    if let Some(p) = parent {
        if p.optional.iter().any(|o| o.starts_with("shared:")) {
            mount::sys_mount(
                None,
                p.mount_point.as_os_str(),
                None,
                libc::MS_PRIVATE,
                None,
            )
            .map_err(|source| RootfsError::Propagation {
                path: p.mount_point.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Bind-mounts the console pty slave (e.g. /dev/pts/3 of the host) onto
/// `<rootfs>/dev/console`. Before pivot.
pub fn mount_console(rootfs: &Path, pty_slave: &Path) -> Result<(), RootfsError> {
    let root_fd = resolve::open_dir_path(rootfs).map_err(|source| RootfsError::Rootfs {
        path: rootfs.to_path_buf(),
        source,
    })?;
    devices::mount_console(&root_fd, pty_slave, Resolver::Kernel)
}

/// pivot_root into rootfs (or MS_MOVE + chroot with `no_pivot`), detach the old root,
/// chdir("/").
pub fn pivot(rootfs: &Path, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let rootfs = std::fs::canonicalize(rootfs).map_err(|source| RootfsError::Rootfs {
        path: rootfs.to_path_buf(),
        source,
    })?;
    if opts.runtime_mount_ns {
        // The runtime's mount table is the host's: nothing may be moved or detached.
        pivot::chroot_into(&rootfs)
    } else if opts.no_pivot {
        pivot::move_root(&rootfs)
    } else {
        pivot::pivot_root(&rootfs)
    }
}

/// chroot(2) into `root` (an `exec` into a container without its own mount namespace).
pub fn chroot(root: &Path) -> Result<(), RootfsError> {
    pivot::chroot_into(root)
}

/// Lazily unmounts every mount under `rootfs` (not `rootfs` itself, which may be the
/// caller's overlay) in the caller's mount namespace, deepest first: what a container
/// without its own mount namespace mounted there.
pub fn unmount_under(rootfs: &Path) -> Result<(), RootfsError> {
    let mounts = mountinfo::read_self().map_err(|source| RootfsError::Propagation {
        path: rootfs.to_path_buf(),
        source,
    })?;
    // Children come after their parents in mountinfo.
    for m in mounts.iter().rev() {
        if m.mount_point == rootfs || !m.mount_point.starts_with(rootfs) {
            continue;
        }
        let c = std::ffi::CString::new(m.mount_point.as_os_str().as_encoded_bytes());
        if let Ok(c) = c {
            // SAFETY: umount2 of a valid C string. A mount already gone with its parent
            // (EINVAL/ENOENT) is fine.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
        }
    }
    Ok(())
}

/// After pivot: rootfsPropagation on the new "/", read-only /dev (when its mount says
/// "ro"), read-only root when `root.readonly`, then read-only paths and masked paths.
pub fn finalize(spec: &Spec) -> Result<(), RootfsError> {
    finalize_with(spec, Resolver::Kernel)
}

fn finalize_with(spec: &Spec, resolver: Resolver) -> Result<(), RootfsError> {
    if let Some(flag) = rootfs_propagation(spec)? {
        paths::root_propagation(flag)?;
    }
    let dev_ro = spec.mounts().iter().flatten().any(|m| {
        is_dev(m.destination())
            && options::parse(
                m.typ().as_deref(),
                m.options().as_deref().unwrap_or_default(),
            )
            .is_ok_and(|o| o.flags & libc::MS_RDONLY != 0)
    });
    if dev_ro {
        paths::remount_readonly(Path::new("/dev"), resolver)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        paths::remount_readonly(Path::new("/"), resolver)?;
    }
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        paths::readonly_path(Path::new(p), resolver)?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        paths::mask_path(Path::new(p), resolver)?;
    }
    Ok(())
}

/// Opens `path`, interpreted inside `root`, never leaving it (openat2 `RESOLVE_IN_ROOT`,
/// fallback to a component-by-component walk with `O_NOFOLLOW`). `flags` are open(2) flags;
/// `O_CLOEXEC` is always added.
pub fn open_in_root(root: &Path, path: &Path, flags: i32) -> Result<OwnedFd, RootfsError> {
    let err = |source| RootfsError::OpenInRoot {
        path: path.to_path_buf(),
        source,
    };
    let root_fd = resolve::open_dir_path(root).map_err(err)?;
    resolve::open_in(root_fd.as_raw_fd(), path, flags, Resolver::Kernel).map_err(err)
}

#[cfg(test)]
mod tests;
