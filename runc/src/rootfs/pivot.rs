//! Entering the rootfs: pivot_root(2) or, with `--no-pivot`, MS_MOVE + chroot(2); a
//! container in the runtime's mount namespace only chroots.
//!
//! Invariants: after [`pivot_root`] the old root is detached (made a slave first so the
//! detach never propagates to the host) and the cwd is the new "/". [`move_root`] first
//! lazily unmounts every mount that is neither the rootfs, under it, nor above it, so the
//! host's /proc, /sys and friends are not reachable from the container.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::mount::sys_mount;
use super::mountinfo;
use super::resolve;
use super::RootfsError;

fn step(step: &'static str) -> impl FnOnce(io::Error) -> RootfsError {
    move |source| RootfsError::Pivot { step, source }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// pivot_root(".", ".") inside `rootfs`, then detach the old root stacked on top.
pub(crate) fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let dir = libc::O_DIRECTORY | libc::O_RDONLY;
    let old =
        resolve::openat(libc::AT_FDCWD, OsStr::new("/"), dir, 0).map_err(step("open old root"))?;
    let new = resolve::openat(libc::AT_FDCWD, rootfs.as_os_str(), dir, 0)
        .map_err(step("open new root"))?;
    // SAFETY: fchdir on an open directory fd.
    check(unsafe { libc::fchdir(new.as_raw_fd()) }).map_err(step("chdir to new root"))?;
    // SAFETY: pivot_root with two valid C strings.
    check(
        unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } as libc::c_int,
    )
    .map_err(step("pivot_root"))?;
    // The old root is now mounted on top of "/"; reach it through its fd.
    // SAFETY: fchdir on an open directory fd.
    check(unsafe { libc::fchdir(old.as_raw_fd()) }).map_err(step("chdir to old root"))?;
    sys_mount(
        None,
        OsStr::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .map_err(step("make old root rslave"))?;
    // SAFETY: umount2 of a valid C string.
    check(unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) })
        .map_err(step("detach old root"))?;
    // SAFETY: chdir to a valid C string.
    check(unsafe { libc::chdir(c"/".as_ptr()) }).map_err(step("chdir /"))
}

/// MS_MOVE the rootfs onto "/" and chroot into it (for filesystems where pivot_root is
/// impossible, e.g. a ramfs root).
pub(crate) fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let mounts = mountinfo::read_self().map_err(step("read mountinfo"))?;
    // Children come after parents in mountinfo; detach in reverse order.
    for m in mounts.iter().rev() {
        let mp = &m.mount_point;
        if mp.starts_with(rootfs) || rootfs.starts_with(mp) {
            continue;
        }
        if let Ok(c) = std::ffi::CString::new(mp.as_os_str().as_encoded_bytes()) {
            // Best effort: a mount already gone with its parent is fine.
            // SAFETY: umount2 of a valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let c = std::ffi::CString::new(rootfs.as_os_str().as_encoded_bytes())
        .map_err(|_| step("rootfs path")(io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: chdir to a valid C string.
    check(unsafe { libc::chdir(c.as_ptr()) }).map_err(step("chdir to rootfs"))?;
    sys_mount(
        Some(rootfs.as_os_str()),
        OsStr::new("/"),
        None,
        libc::MS_MOVE,
        None,
    )
    .map_err(step("move rootfs onto /"))?;
    // SAFETY: chroot to a valid C string.
    check(unsafe { libc::chroot(c".".as_ptr()) }).map_err(step("chroot"))?;
    // SAFETY: chdir to a valid C string.
    check(unsafe { libc::chdir(c"/".as_ptr()) }).map_err(step("chdir /"))
}

/// chroot(2) into `rootfs` without touching any mount: for a container that shares the
/// runtime's mount namespace.
pub(crate) fn chroot_into(rootfs: &Path) -> Result<(), RootfsError> {
    let c = std::ffi::CString::new(rootfs.as_os_str().as_encoded_bytes())
        .map_err(|_| step("rootfs path")(io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: chdir and chroot with a valid C string.
    check(unsafe { libc::chdir(c.as_ptr()) }).map_err(step("chdir to rootfs"))?;
    // SAFETY: chroot to a valid C string.
    check(unsafe { libc::chroot(c".".as_ptr()) }).map_err(step("chroot"))?;
    // SAFETY: chdir to a valid C string.
    check(unsafe { libc::chdir(c"/".as_ptr()) }).map_err(step("chdir /"))
}
