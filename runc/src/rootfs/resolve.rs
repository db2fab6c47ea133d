//! Path resolution inside a root directory that never leaves it.
//!
//! Owns: opening (and creating) paths interpreted relative to a root fd, with symlinks and
//! ".." resolved as if the root were "/" — the semantics of `openat2(RESOLVE_IN_ROOT)`.
//! The kernel does it when it can (Linux ≥ 5.6); otherwise [`Resolver::Walk`] walks the path
//! component by component with `O_NOFOLLOW`, expanding symlinks itself and clamping ".." at
//! the root. A hand-written walker is needed because no maintained crate offers a
//! fd-based, creation-capable in-root resolver with these exact semantics.
//!
//! Invariants: every fd returned refers to an object reached only through the root fd;
//! creation happens with `mkdirat`/`openat(O_CREAT|O_EXCL|O_NOFOLLOW)` relative to an
//! already-resolved parent fd, so a swapped symlink can at worst redirect inside the root.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path};

/// Maximum number of symlinks expanded in one resolution (the kernel's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// How paths are resolved inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolver {
    /// `openat2(RESOLVE_IN_ROOT)`, falling back to [`Resolver::Walk`] on ENOSYS/EPERM.
    Kernel,
    /// The userspace component walk (also used directly by tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Walk,
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `openat(2)` returning an owned fd; `O_CLOEXEC` is always added.
pub(crate) fn openat(dirfd: RawFd, name: &OsStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: c is a valid C string; the returned fd is checked and then owned.
    let fd = check(unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fd is a freshly opened descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory on the host (the root itself) as an `O_PATH` fd.
pub(crate) fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    openat(
        libc::AT_FDCWD,
        path.as_os_str(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is a valid pointer. AT_EMPTY_PATH stats the fd itself.
    check(unsafe { libc::fstatat(fd, c"".as_ptr(), &mut st, libc::AT_EMPTY_PATH) })?;
    Ok(st)
}

/// The file type bits (`S_IFMT`) of what `fd` refers to.
pub(crate) fn file_type(fd: RawFd) -> io::Result<libc::mode_t> {
    Ok(fstat(fd)?.st_mode & libc::S_IFMT)
}

/// Splits `path` into its normal/".." components (root and "." dropped).
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Opens `path` inside `root_fd` with open(2) `flags` (O_CLOEXEC added).
pub(crate) fn open_in(
    root_fd: RawFd,
    path: &Path,
    flags: i32,
    resolver: Resolver,
) -> io::Result<OwnedFd> {
    if resolver == Resolver::Kernel {
        match openat2_in_root(root_fd, path, flags, 0) {
            // ENOSYS: kernel < 5.6; EPERM: a seccomp profile (e.g. nested in an older
            // runtime) blocks openat2. The walk gives the same answer.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {}
            other => return other,
        }
    }
    walk(root_fd, path, flags, None)
}

/// `openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` plus `extra_resolve`.
pub(crate) fn openat2_in_root(
    root_fd: RawFd,
    path: &Path,
    flags: i32,
    extra_resolve: u64,
) -> io::Result<OwnedFd> {
    let rel: OsString = {
        let comps = components(path);
        if comps.is_empty() {
            OsString::from(".")
        } else {
            let mut s = OsString::new();
            for (i, c) in comps.iter().enumerate() {
                if i > 0 {
                    s.push("/");
                }
                s.push(c);
            }
            s
        }
    };
    let c = cstr(&rel)?;
    // SAFETY: open_how is plain data; zeroed is valid and every field is set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | extra_resolve;
    loop {
        // SAFETY: c and how are valid for the duration of the call; size matches the struct.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root_fd,
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: r is a freshly opened descriptor we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a concurrent rename in the root; the kernel asks to retry.
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
}

/// The userspace in-root resolver: `O_NOFOLLOW` per component, symlinks expanded against
/// the root, ".." never above the root. With `create`, missing components are created on
/// the way (directories; the last one as `create` says), also behind dangling symlinks,
/// which therefore resolve inside the root as runc's securejoin does.
fn walk(root_fd: RawFd, path: &Path, flags: i32, create: Option<NodeKind>) -> io::Result<OwnedFd> {
    let root = openat(
        root_fd,
        OsStr::new("."),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )?;
    // Stack of directories from the root to the current one (root at index 0).
    let mut stack: Vec<OwnedFd> = vec![root];
    let mut pending: Vec<OsString> = components(path);
    pending.reverse();
    let mut links = 0usize;
    let follow_last = flags & libc::O_NOFOLLOW == 0;
    let cur_fd = |stack: &Vec<OwnedFd>| stack.last().map_or(root_fd, AsRawFd::as_raw_fd);
    while let Some(comp) = pending.pop() {
        let last = pending.is_empty();
        if comp == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let cur = cur_fd(&stack);
        let fd = match openat(cur, &comp, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create.is_some() => {
                let c = cstr(&comp)?;
                let r = if last && create == Some(NodeKind::File) {
                    // SAFETY: cur is an open directory fd, c a valid C string.
                    let fd = unsafe {
                        libc::openat(
                            cur,
                            c.as_ptr(),
                            libc::O_CREAT
                                | libc::O_EXCL
                                | libc::O_WRONLY
                                | libc::O_NOFOLLOW
                                | libc::O_CLOEXEC,
                            0o644,
                        )
                    };
                    if fd >= 0 {
                        // SAFETY: fd was just opened by us and is not used elsewhere.
                        unsafe { libc::close(fd) };
                    }
                    fd
                } else {
                    // SAFETY: cur is an open directory fd, c a valid C string.
                    unsafe { libc::mkdirat(cur, c.as_ptr(), 0o755) }
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
                openat(cur, &comp, libc::O_PATH | libc::O_NOFOLLOW, 0)?
            }
            Err(e) => return Err(e),
        };
        if file_type(fd.as_raw_fd())? == libc::S_IFLNK && (!last || follow_last) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = readlinkat(cur, &comp)?;
            let target = Path::new(&target);
            if target.is_absolute() {
                stack.truncate(1);
            }
            for c in components(target).into_iter().rev() {
                pending.push(c);
            }
            continue;
        }
        if last {
            // O_NOFOLLOW on a symlink without O_PATH gives ELOOP, as openat2 would.
            return openat(cur, &comp, flags | libc::O_NOFOLLOW, 0);
        }
        if file_type(fd.as_raw_fd())? != libc::S_IFDIR {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        stack.push(fd);
    }
    // The path ended on a directory reached through ".." or a symlink (or is the root).
    openat(cur_fd(&stack), OsStr::new("."), flags, 0)
}

fn readlinkat(dirfd: RawFd, name: &OsStr) -> io::Result<OsString> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is valid for buf.len() bytes; c is a valid C string.
    let n = unsafe { libc::readlinkat(dirfd, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

/// Creates every missing directory of `path` inside the root (mode 0755, also behind
/// dangling symlinks) and returns an `O_PATH` fd of the final directory.
pub(crate) fn mkdir_all_in(root_fd: RawFd, path: &Path, resolver: Resolver) -> io::Result<OwnedFd> {
    ensure_in(root_fd, path, NodeKind::Dir, resolver)
}

/// What to create at a mount destination or device path that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Dir,
    File,
}

/// Ensures `path` exists inside the root (creating parents and, when missing, an empty file
/// or a directory) and returns an `O_PATH` fd of it, resolved inside the root.
pub(crate) fn ensure_in(
    root_fd: RawFd,
    path: &Path,
    kind: NodeKind,
    resolver: Resolver,
) -> io::Result<OwnedFd> {
    let flags = match kind {
        NodeKind::Dir => libc::O_PATH | libc::O_DIRECTORY,
        NodeKind::File => libc::O_PATH,
    };
    match open_in(root_fd, path, flags, resolver) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => walk(root_fd, path, flags, Some(kind)),
        other => other,
    }
}

/// The `/proc/self/fd/N` path naming exactly the object `fd` refers to (mount targets are
/// given this way so that nothing between resolution and mount(2) can redirect them).
pub(crate) fn proc_fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}
