//! The `cgroup` mount kind: what the container sees at /sys/fs/cgroup.
//!
//! - cgroup v1 (and the hybrid layout): a tmpfs at the destination, then one directory per
//!   host hierarchy (`cpu`, `memory`, `cpu,cpuacct`, `systemd`, `unified` ...). With a cgroup
//!   namespace each is a fresh `cgroup`/`cgroup2` mount (the namespace roots it at the
//!   container's cgroup); without one it is a bind of the container's own cgroup directory
//!   from the host hierarchy, as runc does. Co-mounted controllers get symlinks
//!   (`cpu -> cpu,cpuacct`). The tmpfs is made read-only last when the mount asks for "ro".
//! - cgroup v2: a `cgroup2` mount; when the kernel refuses it (a user namespace without a
//!   cgroup namespace), a bind of the container's cgroup directory.
//!
//! Invariant: the container's cgroup membership is read from `/proc/thread-self/cgroup`, so
//! the process must be in the container's cgroups when a cgroup mount is made: moved before
//! the request, or (late join) confirmed by `CgroupJoined` through `prepare`'s
//! `before_cgroup_mount`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::mount::{self, MountCtx};
use super::mountinfo::{self, MountInfo};
use super::options::MountOptions;
use super::resolve::NodeKind;
use super::RootfsError;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// One line of /proc/<pid>/cgroup: hierarchy controllers and the cgroup path in it.
#[derive(Debug, Clone)]
struct Membership {
    controllers: Vec<String>,
    path: PathBuf,
}

fn read_membership() -> io::Result<Vec<Membership>> {
    let text = std::fs::read_to_string("/proc/thread-self/cgroup")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some(Membership {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect())
}

/// True when /sys/fs/cgroup is a cgroup2 filesystem (unified mode).
fn host_is_unified() -> io::Result<bool> {
    // SAFETY: zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    if unsafe { libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == CGROUP2_SUPER_MAGIC)
}

fn err(index: usize, destination: &Path, what: &str) -> impl FnOnce(io::Error) -> RootfsError {
    let destination = destination.to_path_buf();
    let what = what.to_string();
    move |source| RootfsError::Mount {
        index,
        destination,
        what,
        source,
    }
}

/// The host directory of the container's cgroup in hierarchy `m`.
fn host_cgroup_dir(m: &MountInfo, own: &Path) -> PathBuf {
    let rel = own.strip_prefix(&m.root).unwrap_or(own);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    m.mount_point.join(rel)
}

/// Mounts `spec.mounts[index]` of type cgroup/cgroup2.
pub(crate) fn mount_cgroup(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    fstype: &str,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let unified = host_is_unified().map_err(err(index, destination, "statfs /sys/fs/cgroup"))?;
    let membership =
        read_membership().map_err(err(index, destination, "read /proc/thread-self/cgroup"))?;
    let mounts = mountinfo::read_self().map_err(err(index, destination, "read mountinfo"))?;
    if unified || fstype == "cgroup2" {
        mount_v2(ctx, index, destination, opts, &membership, &mounts)
    } else {
        mount_v1(ctx, index, destination, opts, &membership, &mounts)
    }?;
    mount::finish(ctx, index, destination, opts)
}

fn mount_v2(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    opts: &MountOptions,
    membership: &[Membership],
    mounts: &[MountInfo],
) -> Result<(), RootfsError> {
    let fd = mount::destination_fd(ctx, index, destination, NodeKind::Dir)?;
    match mount::mount_on_fd(
        Some(OsStr::new("cgroup2")),
        &fd,
        Some("cgroup2"),
        opts.flags,
        None,
    ) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) => {
            let host = mounts
                .iter()
                .find(|m| m.fstype == "cgroup2")
                .ok_or_else(|| err(index, destination, "find the host cgroup2 mount")(e))?;
            let own = membership
                .iter()
                .find(|m| m.controllers.is_empty())
                .map_or_else(|| PathBuf::from("/"), |m| m.path.clone());
            bind_dir(
                index,
                destination,
                &fd,
                &host_cgroup_dir(host, &own),
                opts,
                || mount::reopen(ctx, index, destination),
            )
        }
        Err(e) => Err(err(index, destination, "cgroup2")(e)),
    }
}

/// Binds `host` onto `fd` and remounts the bind with the mount's flags; `reopen` gives the
/// new mount's top (`fd` still names the directory under it).
fn bind_dir(
    index: usize,
    destination: &Path,
    fd: &std::os::fd::OwnedFd,
    host: &Path,
    opts: &MountOptions,
    reopen: impl FnOnce() -> Result<std::os::fd::OwnedFd, RootfsError>,
) -> Result<(), RootfsError> {
    mount::mount_on_fd(
        Some(host.as_os_str()),
        fd,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(err(index, destination, &format!("bind {}", host.display())))?;
    let top = reopen()?;
    let target = super::resolve::proc_fd_path(&top);
    mount::remount_bind(
        OsStr::new(&target),
        top.as_raw_fd(),
        opts.flags,
        libc::MS_REC,
    )
    .map_err(err(index, destination, "bind remount"))
}

fn mount_v1(
    ctx: &MountCtx<'_>,
    index: usize,
    destination: &Path,
    opts: &MountOptions,
    membership: &[Membership],
    mounts: &[MountInfo],
) -> Result<(), RootfsError> {
    let fd = mount::destination_fd(ctx, index, destination, NodeKind::Dir)?;
    let tmpfs_flags = opts.flags & !libc::MS_RDONLY;
    mount::mount_on_fd(
        Some(OsStr::new("tmpfs")),
        &fd,
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .map_err(err(index, destination, "tmpfs for cgroup hierarchies"))?;
    let tmpfs = mount::reopen(ctx, index, destination)?;

    let cgroup_root = Path::new("/sys/fs/cgroup");
    for m in mounts {
        if !matches!(m.fstype.as_str(), "cgroup" | "cgroup2")
            || m.mount_point.parent() != Some(cgroup_root)
        {
            continue;
        }
        let Some(name) = m.mount_point.file_name() else {
            continue;
        };
        let supers: Vec<&str> = m.super_options.split(',').collect();
        let own = if m.fstype == "cgroup2" {
            membership.iter().find(|c| c.controllers.is_empty())
        } else {
            membership.iter().find(|c| {
                !c.controllers.is_empty()
                    && c.controllers.iter().all(|k| supers.contains(&k.as_str()))
            })
        };
        let Some(own) = own else {
            continue;
        };
        let sub = destination.join(name);
        let sub_fd = open_subdir(&tmpfs, name).map_err(err(index, &sub, "mkdir"))?;
        if ctx.has_cgroupns {
            let (fs, data) = if m.fstype == "cgroup2" {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(own.controllers.join(",")))
            };
            mount::mount_on_fd(
                Some(OsStr::new(fs)),
                &sub_fd,
                Some(fs),
                opts.flags,
                data.as_deref(),
            )
            .map_err(err(index, &sub, fs))?;
        } else {
            bind_dir(
                index,
                &sub,
                &sub_fd,
                &host_cgroup_dir(m, &own.path),
                opts,
                || open_subdir(&tmpfs, name).map_err(err(index, &sub, "reopen")),
            )?;
        }
        let name_str = name.to_string_lossy();
        if name_str.contains(',') {
            for part in name_str.split(',') {
                symlink_at(tmpfs.as_raw_fd(), &name_str, part).map_err(err(
                    index,
                    destination,
                    &format!("symlink {part}"),
                ))?;
            }
        }
    }
    if opts.flags & libc::MS_RDONLY != 0 {
        let target = super::resolve::proc_fd_path(&tmpfs);
        mount::sys_mount(
            None,
            OsStr::new(&target),
            None,
            libc::MS_REMOUNT | opts.flags,
            Some("mode=755"),
        )
        .map_err(err(index, destination, "remount cgroup tmpfs read-only"))?;
    }
    Ok(())
}

/// `name` in the tmpfs just mounted for the hierarchies, made if missing and opened
/// O_PATH. That tmpfs is new, empty and only written by us before the pivot, so the name
/// is taken relative to it directly: a resolution inside the rootfs per hierarchy (a walk
/// of about 30 syscalls, twice) bought nothing there.
fn open_subdir(tmpfs: &std::os::fd::OwnedFd, name: &OsStr) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let n = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C string and an open directory fd.
    if unsafe { libc::mkdirat(tmpfs.as_raw_fd(), n.as_ptr(), 0o755) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    // SAFETY: valid C string and an open directory fd; returns a new fd or -1.
    let fd = unsafe {
        libc::openat(
            tmpfs.as_raw_fd(),
            n.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// symlinkat(target, dirfd, name); an existing name is left alone.
pub(crate) fn symlink_at(dirfd: i32, target: &str, name: &str) -> io::Result<()> {
    let t =
        std::ffi::CString::new(target).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let n = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C strings and an open directory fd.
    if unsafe { libc::symlinkat(t.as_ptr(), dirfd, n.as_ptr()) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}
