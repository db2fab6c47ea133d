//! /dev inside the container: default devices, `linux.devices`, the /dev symlinks,
//! /dev/ptmx and /dev/console.
//!
//! Invariants: device nodes are created with `mknodat` relative to a parent directory fd
//! resolved inside the root (the name itself is never followed); in a user namespace, where
//! mknod is not allowed, an empty file is created instead and the host's device is
//! bind-mounted onto it through `/proc/self/fd/N`. An existing node is left as it is
//! (as runc does).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};

use super::cgroupfs::symlink_at;
use super::mount::mount_on_fd;
use super::resolve::{self, NodeKind, Resolver};
use super::RootfsError;

/// A device to create: path inside the container, kind, numbers, mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    path: PathBuf,
    kind: libc::mode_t,
    major: u32,
    minor: u32,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The devices every container gets (runc's AllowedDevices that have a node).
fn default_nodes() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: Path::new("/dev").join(name),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn node_of(index: usize, d: &LinuxDevice) -> Result<Node, RootfsError> {
    let invalid = |reason: String| RootfsError::InvalidDevice {
        index,
        path: d.path().clone(),
        reason,
    };
    if !d.path().is_absolute() {
        return Err(invalid("path must be absolute".into()));
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(invalid(
                "type \"a\" is only valid in a device cgroup rule".into(),
            ))
        }
    };
    let number = |v: i64, what: &str| {
        u32::try_from(v).map_err(|_| invalid(format!("{what} {v} out of range")))
    };
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Default devices plus `linux.devices` (a spec entry replaces a default of the same path).
fn nodes(spec: &Spec) -> Result<Vec<Node>, RootfsError> {
    let mut out = default_nodes();
    let devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for (i, d) in devices.into_iter().flatten().enumerate() {
        let node = node_of(i, d)?;
        out.retain(|n| n.path != node.path);
        out.push(node);
    }
    Ok(out)
}

/// Validates `linux.devices` without touching anything.
pub(crate) fn validate(spec: &Spec) -> Result<(), RootfsError> {
    nodes(spec).map(|_| ())
}

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::CreateDevice {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates every device node inside the root.
pub(crate) fn create_all(
    spec: &Spec,
    root_fd: &OwnedFd,
    resolver: Resolver,
    in_user_ns: bool,
) -> Result<(), RootfsError> {
    for node in nodes(spec)? {
        if in_user_ns {
            bind_host_device(root_fd, &node, resolver)?;
        } else {
            match mknod_in_root(root_fd, &node, resolver) {
                // mknod refused (no CAP_MKNOD, or a device cgroup without "m"): bind the
                // host's node instead, as runc does.
                Err(RootfsError::CreateDevice { source, .. })
                    if source.raw_os_error() == Some(libc::EPERM) =>
                {
                    bind_host_device(root_fd, &node, resolver)?;
                }
                other => other?,
            }
        }
    }
    Ok(())
}

fn split(path: &Path) -> Result<(&Path, &OsStr), RootfsError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(RootfsError::CreateDevice {
            path: path.to_path_buf(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        }),
    }
}

fn mknod_in_root(root_fd: &OwnedFd, node: &Node, resolver: Resolver) -> Result<(), RootfsError> {
    let (parent, name) = split(&node.path)?;
    let dir = resolve::mkdir_all_in(root_fd.as_raw_fd(), parent, resolver)
        .map_err(create_err(&node.path))?;
    let c = CString::new(name.as_bytes())
        .map_err(|_| create_err(&node.path)(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let dev = libc::makedev(node.major, node.minor);
    // SAFETY: dir is an open directory fd and c a valid C string.
    let r = unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), node.kind | node.mode, dev) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EEXIST) {
            return Ok(());
        }
        return Err(create_err(&node.path)(e));
    }
    // mknod applies the umask; set the exact mode and owner (never following a link).
    // SAFETY: as above.
    if unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), node.mode, 0) } < 0 {
        return Err(create_err(&node.path)(io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            node.uid,
            node.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } < 0
    {
        return Err(create_err(&node.path)(io::Error::last_os_error()));
    }
    Ok(())
}

fn bind_host_device(root_fd: &OwnedFd, node: &Node, resolver: Resolver) -> Result<(), RootfsError> {
    let host = resolve::openat(libc::AT_FDCWD, node.path.as_os_str(), libc::O_PATH, 0)
        .map_err(create_err(&node.path))?;
    let target = resolve::ensure_in(root_fd.as_raw_fd(), &node.path, NodeKind::File, resolver)
        .map_err(create_err(&node.path))?;
    mount_on_fd(
        Some(OsStr::new(&resolve::proc_fd_path(&host))),
        &target,
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(create_err(&node.path))
}

/// /dev/fd, /dev/std{in,out,err} and (when the host has /proc/kcore) /dev/core.
pub(crate) fn create_symlinks(root_fd: &OwnedFd, resolver: Resolver) -> Result<(), RootfsError> {
    let dev = Path::new("/dev");
    let dir = resolve::mkdir_all_in(root_fd.as_raw_fd(), dev, resolver).map_err(|source| {
        RootfsError::Symlink {
            path: dev.to_path_buf(),
            source,
        }
    })?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        symlink_at(dir.as_raw_fd(), target, name).map_err(|source| RootfsError::Symlink {
            path: dev.join(name),
            source,
        })?;
    }
    Ok(())
}

/// Replaces /dev/ptmx with a symlink to pts/ptmx (the devpts instance's multiplexer).
pub(crate) fn setup_ptmx(root_fd: &OwnedFd, resolver: Resolver) -> Result<(), RootfsError> {
    let path = Path::new("/dev/ptmx");
    let err = |source| RootfsError::Symlink {
        path: path.to_path_buf(),
        source,
    };
    let dir =
        resolve::mkdir_all_in(root_fd.as_raw_fd(), Path::new("/dev"), resolver).map_err(err)?;
    // SAFETY: dir is an open directory fd, the name a valid C string.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c"ptmx".as_ptr(), 0) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(err(e));
        }
    }
    symlink_at(dir.as_raw_fd(), "pts/ptmx", "ptmx").map_err(err)
}

/// Bind-mounts `pty_slave` onto <root>/dev/console (created as an empty file if missing).
pub(crate) fn mount_console(
    root_fd: &OwnedFd,
    pty_slave: &Path,
    resolver: Resolver,
) -> Result<(), RootfsError> {
    let console = Path::new("/dev/console");
    let err = |source| RootfsError::Console {
        pty: pty_slave.to_path_buf(),
        source,
    };
    let slave =
        resolve::openat(libc::AT_FDCWD, pty_slave.as_os_str(), libc::O_PATH, 0).map_err(err)?;
    let target =
        resolve::ensure_in(root_fd.as_raw_fd(), console, NodeKind::File, resolver).map_err(err)?;
    mount_on_fd(
        Some(OsStr::new(&resolve::proc_fd_path(&slave))),
        &target,
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(err)
}
