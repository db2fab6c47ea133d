//! The pod's own user namespace (`hostUsers: false`, CRI userns_options mode POD) and the
//! namespaces it owns. Every container of the pod joins the one user namespace pinned at
//! `<state>/ns/<pod>/user`; the pod's network, IPC and UTS namespaces are created inside it
//! (as containerd 2 does with its sandbox), so the containers' root can mount sysfs and
//! mqueue and set the hostname there, and the pod's PID namespace is made inside it by the
//! pod init (see [`super::init`]).
//!
//! A user namespace can only be created by a single-threaded process and its maps written
//! by a process outside it, so a short-lived child is forked from a blocking thread: it
//! unshares the user namespace, waits for crustd to write the maps, unshares the others,
//! sets the hostname, and waits until its namespaces are pinned; then it is reaped.
//!
//! Invariants: the child calls only async-signal-safe functions (crustd is
//! multi-threaded); on any failure every pin made here is removed and the child reaped.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::nspin;
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::types::{IdMapping, UserNamespace};

/// What [`create`] pinned.
#[derive(Debug, Default)]
pub struct Pinned {
    pub user: PathBuf,
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

/// The pin of `pod_id`'s user namespace.
pub fn pin_path(state: &Path, pod_id: &str) -> PathBuf {
    nspin::path(state, pod_id, "user")
}

fn map_line(m: &IdMapping) -> String {
    format!("{} {} {}\n", m.container_id, m.host_id, m.size)
}

/// Creates the pod's user namespace with `userns`'s maps and, inside it, a network
/// namespace when `net`, an IPC one when `ipc`, a UTS one with `hostname` when given; pins
/// them all. Blocking (fork, waitpid): call from a blocking thread.
pub fn create(
    state: &Path,
    pod_id: &str,
    userns: &UserNamespace,
    net: bool,
    ipc: bool,
    hostname: Option<&str>,
) -> Result<Pinned> {
    let fail = |message: String| RuntimeError::PodInit {
        pod: pod_id.into(),
        message: format!("pod user namespace: {message}"),
    };
    let mut flags = 0;
    if net {
        flags |= libc::CLONE_NEWNET;
    }
    if ipc {
        flags |= libc::CLONE_NEWIPC;
    }
    if hostname.is_some() {
        flags |= libc::CLONE_NEWUTS;
    }
    let host = hostname.unwrap_or_default().as_bytes().to_vec();
    let (to_parent_r, to_parent_w) = pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    let (to_child_r, to_child_w) = pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    // SAFETY: the child only calls async-signal-safe functions on memory and fds prepared
    // before the fork, then _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(fail(format!("fork: {}", std::io::Error::last_os_error())));
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls only; never returns.
        unsafe {
            child(
                &to_parent_w,
                &to_child_r,
                to_child_w.as_raw_fd(),
                flags,
                &host,
            )
        }
    }
    drop(to_parent_w);
    drop(to_child_r);
    let mut made = Vec::new();
    let r = (|| -> std::result::Result<Pinned, String> {
        read_ok(&to_parent_r).map_err(|e| format!("unshare user namespace: {e}"))?;
        std::fs::write(format!("/proc/{pid}/uid_map"), map_line(&userns.uid))
            .map_err(|e| format!("write uid_map: {e}"))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map_line(&userns.gid))
            .map_err(|e| format!("write gid_map: {e}"))?;
        write_byte(&to_child_w).map_err(|e| format!("release the child: {e}"))?;
        read_ok(&to_parent_r).map_err(|e| format!("unshare net/ipc/uts in it: {e}"))?;
        let mut pin = |kind: &str| -> std::result::Result<PathBuf, String> {
            let p = nspin::path(state, pod_id, kind);
            nspin::prepare(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
            made.push(p.clone());
            nspin::bind(&format!("/proc/{pid}/ns/{kind}"), &p)
                .map_err(|e| format!("pin {}: {e}", p.display()))?;
            Ok(p)
        };
        Ok(Pinned {
            user: pin("user")?,
            net: if net { Some(pin("net")?) } else { None },
            ipc: if ipc { Some(pin("ipc")?) } else { None },
            uts: if hostname.is_some() {
                Some(pin("uts")?)
            } else {
                None
            },
        })
    })();
    // Closing our end lets the child exit; on failure it may still wait for the maps.
    drop(to_child_w);
    if r.is_err() {
        // SAFETY: kill of our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    r.map_err(|m| {
        for p in &made {
            let _ = nspin::unpin(p);
        }
        fail(m)
    })
}

/// The forked child.
///
/// # Safety
/// Call only in the child right after fork: it calls async-signal-safe functions only and
/// never returns.
unsafe fn child(
    to_parent: &OwnedFd,
    from_parent: &OwnedFd,
    parent_end: libc::c_int,
    flags: libc::c_int,
    host: &[u8],
) -> ! {
    // SAFETY: raw syscalls on fds and buffers valid for each call.
    unsafe {
        libc::close(parent_end);
        let mut ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0);
        libc::write(to_parent.as_raw_fd(), (&ok as *const u8).cast(), 1);
        let mut b = 0u8;
        if ok == 0 || libc::read(from_parent.as_raw_fd(), (&mut b as *mut u8).cast(), 1) != 1 {
            libc::_exit(1);
        }
        ok = u8::from(flags == 0 || libc::unshare(flags) == 0);
        if ok == 1 && flags & libc::CLONE_NEWUTS != 0 {
            ok = u8::from(libc::sethostname(host.as_ptr().cast(), host.len()) == 0);
        }
        libc::write(to_parent.as_raw_fd(), (&ok as *const u8).cast(), 1);
        // Until the parent closes its end: the namespaces are pinned by then.
        libc::read(from_parent.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
        libc::_exit(0)
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just made and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn read_ok(fd: &OwnedFd) -> std::io::Result<()> {
    let mut b = 0u8;
    // SAFETY: reads one byte into a local.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
    match (n, b) {
        (1, 1) => Ok(()),
        (1, _) => Err(std::io::Error::other("the child's call failed")),
        _ => Err(std::io::Error::other("the child exited")),
    }
}

fn write_byte(fd: &OwnedFd) -> std::io::Result<()> {
    let b = 1u8;
    // SAFETY: writes one byte from a local.
    if unsafe { libc::write(fd.as_raw_fd(), (&b as *const u8).cast(), 1) } != 1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Root only: the user namespace has the maps, and the network namespace pinned with
    /// it is owned by it (NS_GET_USERNS of the net pin is the user pin).
    #[test]
    fn pins_a_user_namespace_that_owns_the_others() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let m = IdMapping {
            container_id: 0,
            host_id: 300_000,
            size: 65536,
        };
        let u = UserNamespace { uid: m, gid: m };
        let p = create(d.path(), "p1", &u, true, true, Some("h1")).unwrap();
        assert!(nspin::is_pinned(&p.user));
        let net = std::fs::File::open(p.net.as_ref().unwrap()).unwrap();
        const NS_GET_USERNS: libc::c_ulong = 0xb701;
        // SAFETY: ioctl on an nsfs fd we hold; returns a new fd or -1.
        let owner = unsafe { libc::ioctl(net.as_raw_fd(), NS_GET_USERNS) };
        assert!(owner >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: the ioctl returned a new fd owned here.
        let owner = unsafe { std::fs::File::from_raw_fd(owner) };
        let (a, b) = (
            owner.metadata().unwrap(),
            std::fs::metadata(&p.user).unwrap(),
        );
        assert_eq!((a.ino(), a.dev()), (b.ino(), b.dev()));
        for kind in ["user", "net", "ipc", "uts"] {
            nspin::unpin(&nspin::path(d.path(), "p1", kind)).unwrap();
        }
    }
}
