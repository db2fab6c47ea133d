//! The sync channel between the runtime (parent) and the init/exec processes it starts:
//! one `SOCK_SEQPACKET` unix socket pair, one JSON message per datagram, optionally with one
//! fd attached (SCM_RIGHTS, for the pty master).
//!
//! Protocol (parent ⇄ child), in order; any side may instead send `Error` and stop:
//! 1. parent → `Request` (the whole job).
//! 2. child → `UsernsReady`, parent writes uid/gid maps → `MapsWritten` (only with a new userns).
//! 3. child → `Pid` (host pid of the process that becomes the container init / exec'd process).
//!    With `Request::late_cgroup` (create without a new cgroup namespace) the parent then moves
//!    that process into the container's cgroup → `CgroupJoined`, while the child sets up the
//!    rootfs; the child reads it before its first cgroup mount (which reads its membership)
//!    or, at the latest, before step 4.
//! 4. child → `Hooks`, parent runs prestart + createRuntime → `HooksDone` (create, only with hooks).
//! 5. child → `Console` with the pty master attached (only with a terminal).
//! 6. create: child → `Ready` once everything that can fail is done (user, capabilities,
//!    cwd, no_new_privs, seccomp installed); the init then waits on the exec fifo. It is sent
//!    pre-encoded with write(2) ([`Channel::send_encoded`]), as the filter is already on.
//! 7. Both kinds: the child's end is close-on-exec, so EOF after `Ready` (create) or after
//!    `Pid` (exec) means its execve succeeded; an `Error` instead means it failed.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

/// Largest message (the request carries the whole config).
const MAX_MSG: usize = 4 << 20;

/// Errors of the sync channel.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("create sync socketpair")]
    Socketpair(#[source] nix::Error),
    #[error("send sync message")]
    Send(#[source] nix::Error),
    #[error("receive sync message")]
    Recv(#[source] nix::Error),
    #[error("decode sync message")]
    Decode(#[source] serde_json::Error),
    #[error("the other side closed the sync channel")]
    Closed,
}

/// Messages on the channel; see the module docs for the order.
#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    Request(Box<crate::init::Request>),
    UsernsReady,
    MapsWritten,
    Pid(i32),
    CgroupJoined,
    Hooks,
    HooksDone(i32),
    Console,
    Ready,
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates a connected pair (both ends close-on-exec).
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SyncError::Socketpair)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Adopts an inherited fd (the init side, from the environment).
    ///
    /// # Safety
    /// `fd` must be an open socket owned by nobody else.
    pub unsafe fn from_raw(fd: RawFd) -> Self {
        // SAFETY: guaranteed by the caller.
        Channel {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sends `msg`, with `fd` attached when given.
    pub fn send(&self, msg: &Message, fd: Option<RawFd>) -> Result<(), SyncError> {
        let data = Self::encode(msg)?;
        let iov = [IoSlice::new(&data)];
        let fds = fd.map(|f| [f]);
        let cmsgs: Vec<ControlMessage> = fds.iter().map(|f| ControlMessage::ScmRights(f)).collect();
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)
            .map_err(SyncError::Send)?;
        Ok(())
    }

    /// `msg` as [`Channel::send_encoded`] sends it.
    pub fn encode(msg: &Message) -> Result<Vec<u8>, SyncError> {
        serde_json::to_vec(msg).map_err(SyncError::Decode)
    }

    /// Sends a message encoded beforehand with a single write(2): no allocation and no
    /// sendmsg, for use after the seccomp filter is installed.
    pub fn send_encoded(&self, data: &[u8]) -> Result<(), SyncError> {
        loop {
            match nix::unistd::write(&self.fd, data) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(SyncError::Send(e)),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Receives one message and the fd attached to it, if any.
    pub fn recv(&self) -> Result<(Message, Option<OwnedFd>), SyncError> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => {
                    let mut fd = None;
                    for c in m.cmsgs().map_err(SyncError::Recv)? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                // SAFETY: the kernel just installed this fd for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (m.bytes, fd);
                }
                Err(nix::Error::EINTR) => continue,
                // The peer closed with a message of ours unread (e.g. an init that failed
                // before reading `CgroupJoined`). The kernel reports that once, before the
                // messages still queued for us (its `Error`), and clears it: read on.
                Err(nix::Error::ECONNRESET) => continue,
                Err(e) => return Err(SyncError::Recv(e)),
            }
        };
        if n == 0 {
            return Err(SyncError::Closed);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(SyncError::Decode)?;
        Ok((msg, fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_queued_before_a_reset_are_still_read() {
        let (a, b) = pair().expect("pair");
        b.send(&Message::Error("why".into()), None).expect("send");
        // `a` sends something `b` never reads, then `b` goes away.
        a.send(&Message::CgroupJoined, None).expect("send");
        drop(b);
        assert!(matches!(a.recv(), Ok((Message::Error(e), None)) if e == "why"));
        assert!(matches!(a.recv(), Err(SyncError::Closed)));
    }

    #[test]
    fn roundtrip_with_fd() {
        let (a, b) = pair().expect("pair");
        let f = std::fs::File::open("/dev/null").expect("open");
        a.send(&Message::Pid(42), Some(f.as_raw_fd()))
            .expect("send");
        let (m, fd) = b.recv().expect("recv");
        assert!(matches!(m, Message::Pid(42)));
        assert!(fd.is_some());
        let ready = Channel::encode(&Message::Ready).expect("encode");
        a.send_encoded(&ready).expect("write");
        assert!(matches!(b.recv(), Ok((Message::Ready, None))));
        drop(a);
        assert!(matches!(b.recv(), Err(SyncError::Closed)));
    }
}
