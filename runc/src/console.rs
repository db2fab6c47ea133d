//! Terminals: the pty is created inside the container (from its own devpts), and its master
//! is handed to the caller's `--console-socket` with SCM_RIGHTS, as runc does (the message
//! body is the pty name).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Errors of pty and console-socket handling.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("open pty master {path:?}")]
    OpenMaster {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("unlock pty")]
    Unlock(#[source] nix::Error),
    #[error("connect to console socket {path:?}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("send pty master to console socket")]
    Send(#[source] nix::Error),
    #[error("open pty slave {path:?}")]
    OpenSlave {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("make the pty the controlling terminal")]
    Setup(#[source] nix::Error),
}

/// A freshly opened pty pair: the master, and the slave number.
pub struct Pty {
    pub master: OwnedFd,
    pub number: u32,
}

/// Opens `ptmx` (e.g. `<rootfs>/dev/ptmx` before pivot, or `/dev/ptmx` after setns).
pub fn open_pty(ptmx: &Path) -> Result<Pty, ConsoleError> {
    let fd = nix::fcntl::open(
        ptmx,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|source| ConsoleError::OpenMaster {
        path: ptmx.into(),
        source,
    })?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int; fd is a pty master.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } < 0 {
        return Err(ConsoleError::Unlock(nix::Error::last()));
    }
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty number into the pointed-to uint.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut number) } < 0 {
        return Err(ConsoleError::Unlock(nix::Error::last()));
    }
    Ok(Pty { master: fd, number })
}

/// Sends `master` to the unix socket at `socket`, with `name` as the message body.
pub fn send_to_socket(socket: &Path, master: RawFd, name: &str) -> Result<(), ConsoleError> {
    let s = UnixStream::connect(socket).map_err(|source| ConsoleError::Connect {
        path: socket.into(),
        source,
    })?;
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [master];
    sendmsg::<()>(
        s.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(ConsoleError::Send)?;
    Ok(())
}

/// Opens the slave `/dev/pts/<n>`, makes it stdin/stdout/stderr and the controlling
/// terminal of this (session leader) process.
pub fn become_console(slave: &Path) -> Result<(), ConsoleError> {
    let fd = nix::fcntl::open(slave, OFlag::O_RDWR, nix::sys::stat::Mode::empty()).map_err(
        |source| ConsoleError::OpenSlave {
            path: slave.into(),
            source,
        },
    )?;
    for target in 0..3 {
        // SAFETY: dup2 onto the stdio numbers; fd is open.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(ConsoleError::Setup(nix::Error::last()));
        }
    }
    // SAFETY: TIOCSCTTY with arg 0 on a tty fd.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(ConsoleError::Setup(nix::Error::last()));
    }
    Ok(())
}
