//! Mounting one `spec.mounts` entry inside the root, and the mount(2)-family wrappers the
//! rest of the module uses.
//!
//! Invariants: the destination is resolved inside the root ([`super::resolve`]) and the
//! mount target is always `/proc/self/fd/N` of an `O_PATH` fd to the resolved object, so no
//! symlink swapped in between can redirect the mount; bind mounts get their flags from a
//! second `MS_REMOUNT|MS_BIND` call (mount(2) ignores them on the first), keeping the
//! flags the kernel locks in a user namespace; proc and sysfs refuse a destination that is
//! or passes through a symlink (CVE-2019-19921 class).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::Mount;

use super::options::{self, MountOptions, MOUNT_ATTR_ATIME_MASK};
use super::resolve::{self, NodeKind, Resolver};
use super::{cgroupfs, RootfsError};

/// Flags that a bind remount can change.
const REMOUNT_FLAGS: c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME
    | libc::MS_NOSYMFOLLOW;

/// Flags the kernel locks on a mount made in a less privileged user namespace
/// (statvfs ST_* values equal the MS_* ones).
const LOCKED_FLAGS: c_ulong = libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME;

/// What [`mount_entry`] needs to know about the container.
pub(crate) struct MountCtx<'a> {
    pub root_fd: &'a OwnedFd,
    pub resolver: Resolver,
    pub in_user_ns: bool,
    pub has_netns: bool,
    pub has_cgroupns: bool,
    /// Idmapped clones by mount index ([`super::idmap`]).
    pub idmapped: &'a std::collections::HashMap<usize, RawFd>,
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// mount(2) with optional source, fstype and data.
pub(crate) fn sys_mount(
    source: Option<&OsStr>,
    target: &OsStr,
    fstype: Option<&str>,
    flags: c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(c_string).transpose()?;
    let target = c_string(target)?;
    let fstype = fstype.map(|s| c_string(OsStr::new(s))).transpose()?;
    let data = data.map(|s| c_string(OsStr::new(s))).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are valid C strings or null, alive for the call.
    let r = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// mount(2) onto the object `fd` refers to.
pub(crate) fn mount_on_fd(
    source: Option<&OsStr>,
    fd: &OwnedFd,
    fstype: Option<&str>,
    flags: c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let target = resolve::proc_fd_path(fd);
    sys_mount(source, OsStr::new(&target), fstype, flags, data)
}

/// The mount flags (statvfs `f_flag`) of the mount `fd` is on.
fn mount_flags_of(fd: RawFd) -> io::Result<c_ulong> {
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open descriptor, st a valid pointer.
    if unsafe { libc::fstatvfs(fd, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_flag)
}

/// `MS_BIND|MS_REMOUNT` with `flags` on the mount at `target` (`target_fd` opened on it).
/// On EPERM (flags locked in a user namespace) retries keeping the locked ones.
pub(crate) fn remount_bind(
    target: &OsStr,
    target_fd: RawFd,
    flags: c_ulong,
    extra: c_ulong,
) -> io::Result<()> {
    let want = libc::MS_BIND | libc::MS_REMOUNT | extra | (flags & REMOUNT_FLAGS);
    match sys_mount(None, target, None, want, None) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let locked = mount_flags_of(target_fd)? & LOCKED_FLAGS;
            let mut retry = want | locked;
            // An atime mode the mount is locked to replaces the requested one.
            if locked & (libc::MS_NOATIME | libc::MS_RELATIME) != 0 {
                retry &= !libc::MS_STRICTATIME;
                retry |= locked & (libc::MS_NOATIME | libc::MS_RELATIME);
            }
            sys_mount(None, target, None, retry, None)
        }
        other => other,
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) recursively on the mount tree at `fd`.
fn mount_setattr_recursive(fd: RawFd, set: u64, clr: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: attr is a valid mount_attr of the size passed; "" with AT_EMPTY_PATH acts on fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Returns an error for `mounts[index]`.
fn invalid(index: usize, destination: &Path, reason: impl Into<String>) -> RootfsError {
    RootfsError::InvalidMount {
        index,
        destination: destination.to_path_buf(),
        reason: reason.into(),
    }
}

/// Mounts `spec.mounts[index]` inside the root.
pub(crate) fn mount_entry(ctx: &MountCtx<'_>, index: usize, m: &Mount) -> Result<(), RootfsError> {
    let destination = m.destination();
    if !destination.is_absolute() {
        return Err(invalid(
            index,
            destination,
            "destination must be an absolute path",
        ));
    }
    let fstype = m.typ().as_deref().filter(|t| !t.is_empty());
    let mut opts = options::parse(fstype, m.options().as_deref().unwrap_or_default())
        .map_err(|e| invalid(index, destination, e.to_string()))?;
    if super::is_dev(destination) && !opts.is_bind() {
        // Devices are created in /dev after this mount; `finalize` makes it read-only.
        opts.flags &= !libc::MS_RDONLY;
    }
    let mount_err = |what: String| {
        let destination = destination.to_path_buf();
        move |source: io::Error| RootfsError::Mount {
            index,
            destination,
            what,
            source,
        }
    };

    if opts.is_bind() {
        let source = m
            .source()
            .as_deref()
            .ok_or_else(|| invalid(index, destination, "bind mount without a source"))?;
        if let Some(&fd) = ctx.idmapped.get(&index) {
            return idmapped_bind(ctx, index, destination, source, fd, &opts);
        }
        if super::idmap::wants(m) {
            return Err(invalid(
                index,
                destination,
                "idmapped clone was not prepared",
            ));
        }
        return bind_mount(ctx, index, destination, source, &opts);
    }
    let Some(fstype) = fstype else {
        return Err(invalid(index, destination, "mount without a type"));
    };
    match fstype {
        "cgroup" | "cgroup2" => {
            return cgroupfs::mount_cgroup(ctx, index, destination, fstype, &opts);
        }
        "sysfs" if ctx.in_user_ns && !ctx.has_netns => {
            return rbind_host(ctx, index, destination, Path::new("/sys"), &opts);
        }
        _ => {}
    }
    let fd = destination_fd(ctx, index, destination, NodeKind::Dir)?;
    if matches!(fstype, "proc" | "sysfs") {
        refuse_symlinks(ctx, index, destination)?;
    }
    let source = m
        .source()
        .as_deref()
        .map(Path::as_os_str)
        .unwrap_or(OsStr::new(fstype));
    let data = opts.data_string();
    // A tmpfs to fill from the directory it covers keeps a handle on that directory.
    let covered = if opts.tmpcopyup && fstype == "tmpfs" {
        Some(
            resolve::openat(
                fd.as_raw_fd(),
                OsStr::new("."),
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )
            .map_err(mount_err("open covered directory for tmpcopyup".into()))?,
        )
    } else {
        None
    };
    let first_flags = if covered.is_some() {
        opts.flags & !libc::MS_RDONLY
    } else {
        opts.flags
    };
    match mount_on_fd(
        Some(source),
        &fd,
        Some(fstype),
        first_flags,
        data.as_deref(),
    ) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && ctx.in_user_ns && fstype == "sysfs" => {
            return rbind_host(ctx, index, destination, Path::new("/sys"), &opts);
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && ctx.in_user_ns && fstype == "mqueue" => {
            return rbind_host(ctx, index, destination, Path::new("/dev/mqueue"), &opts);
        }
        Err(e) => {
            return Err(mount_err(format!(
                "{fstype} ({})",
                source.to_string_lossy()
            ))(e))
        }
    }
    let top = reopen(ctx, index, destination)?;
    if let Some(covered) = covered {
        super::copyup::copy_dir(covered.as_raw_fd(), top.as_raw_fd())
            .map_err(mount_err("tmpcopyup".into()))?;
        if opts.flags & libc::MS_RDONLY != 0 {
            let target = resolve::proc_fd_path(&top);
            sys_mount(
                None,
                OsStr::new(&target),
                None,
                libc::MS_REMOUNT | opts.flags,
                data.as_deref(),
            )
            .map_err(mount_err("remount read-only".into()))?;
        }
    }
    finish(ctx, index, destination, &opts)
}

/// Resolves (creating when missing) the destination inside the root.
pub(crate) fn destination_fd(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    kind: NodeKind,
) -> Result<OwnedFd, RootfsError> {
    resolve::ensure_in(ctx.root_fd.as_raw_fd(), destination, kind, ctx.resolver).map_err(|source| {
        RootfsError::MountDestination {
            index,
            destination: destination.to_path_buf(),
            source,
        }
    })
}

/// Re-opens the destination after mounting, so the fd refers to the new mount's root.
pub(crate) fn reopen(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
) -> Result<OwnedFd, RootfsError> {
    resolve::open_in(
        ctx.root_fd.as_raw_fd(),
        destination,
        libc::O_PATH,
        ctx.resolver,
    )
    .map_err(|source| RootfsError::MountDestination {
        index,
        destination: destination.to_path_buf(),
        source,
    })
}

/// Fails when any component of `destination` inside the root is a symlink.
fn refuse_symlinks(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
) -> Result<(), RootfsError> {
    let mut prefix = PathBuf::from("/");
    for comp in destination.components().skip(1) {
        prefix.push(comp);
        let fd = resolve::open_in(
            ctx.root_fd.as_raw_fd(),
            &prefix,
            libc::O_PATH | libc::O_NOFOLLOW,
            ctx.resolver,
        )
        .map_err(|source| RootfsError::MountDestination {
            index,
            destination: destination.to_path_buf(),
            source,
        })?;
        let ft =
            resolve::file_type(fd.as_raw_fd()).map_err(|source| RootfsError::MountDestination {
                index,
                destination: destination.to_path_buf(),
                source,
            })?;
        if ft == libc::S_IFLNK {
            return Err(invalid(
                index,
                destination,
                format!(
                    "{} is a symlink; proc and sysfs are never mounted through one",
                    prefix.display()
                ),
            ));
        }
    }
    Ok(())
}

/// A bind (or rbind) mount of a host path, then its flags, attributes and propagation.
fn bind_mount(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    source: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let src_fd =
        resolve::openat(libc::AT_FDCWD, source.as_os_str(), libc::O_PATH, 0).map_err(|e| {
            RootfsError::MountSource {
                index,
                path: source.to_path_buf(),
                source: e,
            }
        })?;
    let kind = source_kind(src_fd.as_raw_fd(), index, source)?;
    let fd = destination_fd(ctx, index, destination, kind)?;
    let flags = libc::MS_BIND | (opts.flags & libc::MS_REC);
    mount_on_fd(
        Some(OsStr::new(&resolve::proc_fd_path(&src_fd))),
        &fd,
        None,
        flags,
        None,
    )
    .map_err(|e| RootfsError::Mount {
        index,
        destination: destination.to_path_buf(),
        what: format!("bind {}", source.display()),
        source: e,
    })?;
    remount_and_finish(ctx, index, destination, opts)
}

/// Attaches the (idmapped) clone `mnt` of `source` (see [`super::idmap`]) at
/// `destination`, then applies the flags as [`bind_mount`] does.
fn idmapped_bind(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    source: &Path,
    mnt: RawFd,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let kind = source_kind(mnt, index, source)?;
    let fd = destination_fd(ctx, index, destination, kind)?;
    // SAFETY: `mnt` stays open for the whole of `prepare` (the caller owns it).
    let mnt = unsafe { std::os::fd::BorrowedFd::borrow_raw(mnt) };
    crust_idmap::attach(mnt, Path::new(&resolve::proc_fd_path(&fd))).map_err(|e| {
        RootfsError::Mount {
            index,
            destination: destination.to_path_buf(),
            what: format!("attach the clone of {}", source.display()),
            source: match e {
                crust_idmap::IdmapError::Attach { source, .. } => source,
                other => io::Error::other(other.to_string()),
            },
        }
    })?;
    remount_and_finish(ctx, index, destination, opts)
}

/// Whether the mount source open at `fd` is a directory or something else (a file).
fn source_kind(fd: RawFd, index: usize, source: &Path) -> Result<NodeKind, RootfsError> {
    match resolve::file_type(fd) {
        Ok(libc::S_IFDIR) => Ok(NodeKind::Dir),
        Ok(_) => Ok(NodeKind::File),
        Err(e) => Err(RootfsError::MountSource {
            index,
            path: source.to_path_buf(),
            source: e,
        }),
    }
}

/// After a bind is attached at `destination`: the flags a bind takes only by a remount
/// (ro, nosuid, ...), then [`finish`].
fn remount_and_finish(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    if opts.flags & REMOUNT_FLAGS != 0 {
        let top = reopen(ctx, index, destination)?;
        let target = resolve::proc_fd_path(&top);
        remount_bind(OsStr::new(&target), top.as_raw_fd(), opts.flags, 0).map_err(|e| {
            RootfsError::Mount {
                index,
                destination: destination.to_path_buf(),
                what: "bind remount".into(),
                source: e,
            }
        })?;
    }
    finish(ctx, index, destination, opts)
}

/// rbind of a host directory in place of a filesystem the user namespace may not mount.
fn rbind_host(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    host: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let mut bind = opts.clone();
    bind.flags |= libc::MS_BIND | libc::MS_REC;
    bind.data.clear();
    bind_mount(ctx, index, destination, host, &bind)
}

/// Recursive attributes and propagation of a freshly mounted destination.
pub(crate) fn finish(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    if opts.rec_attr_set == 0
        && opts.rec_attr_clr == 0
        && opts.rec_atime.is_none()
        && opts.propagation.is_empty()
    {
        return Ok(());
    }
    let top = reopen(ctx, index, destination)?;
    let err = |what: &str| {
        let destination = destination.to_path_buf();
        let what = what.to_string();
        move |source: io::Error| RootfsError::Mount {
            index,
            destination,
            what,
            source,
        }
    };
    if opts.rec_attr_set != 0 || opts.rec_attr_clr != 0 || opts.rec_atime.is_some() {
        let mut set = opts.rec_attr_set;
        let mut clr = opts.rec_attr_clr;
        if let Some(atime) = opts.rec_atime {
            set |= atime;
            clr |= MOUNT_ATTR_ATIME_MASK;
        }
        mount_setattr_recursive(top.as_raw_fd(), set, clr).map_err(err("mount_setattr"))?;
    }
    for p in &opts.propagation {
        mount_on_fd(None, &top, None, *p, None).map_err(err("propagation"))?;
    }
    Ok(())
}
