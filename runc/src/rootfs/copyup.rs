//! runc's "tmpcopyup" mount extension: fill a new tmpfs with the contents of the directory
//! it covers.
//!
//! Invariant: nothing is followed — symlinks are copied as symlinks and only real
//! directories are descended into; ownership and permission bits are kept. The source is
//! read through a directory fd opened before the tmpfs covered it.

use std::fs;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::{lchown, symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies the tree under directory fd `from` into directory fd `to`.
pub(crate) fn copy_dir(from: RawFd, to: RawFd) -> io::Result<()> {
    let from = format!("/proc/self/fd/{from}");
    let to = format!("/proc/self/fd/{to}");
    copy_tree(Path::new(&from), Path::new(&to))?;
    let meta = fs::metadata(&from)?;
    fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    lchown(&to, Some(meta.uid()), Some(meta.gid()))
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            let mut input = fs::File::open(&src)?;
            let mut output = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dst)?;
            io::copy(&mut input, &mut output)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dst.as_os_str()))
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: c is a valid C string; mode and rdev come from lstat.
            if unsafe { libc::mknod(c.as_ptr(), meta.mode(), meta.rdev()) } < 0 {
                return Err(io::Error::last_os_error());
            }
        } else {
            // Sockets are not copied (they are meaningless without their listener).
            continue;
        }
        lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !ft.is_symlink() {
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}
