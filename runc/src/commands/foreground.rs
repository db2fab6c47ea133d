//! Foreground waiting for `run` and `exec`: this process is the child subreaper of the
//! container process, forwards the signals it receives to it, and returns its exit code
//! (128 + signal when killed), as runc does.

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Signals blocked (and read through a signalfd) while in the foreground.
pub fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    set
}

/// Blocks the foreground signals. Call before starting the container so no SIGCHLD is lost
/// (std's spawn resets the mask in children).
pub fn block_signals() -> Result<SigSet> {
    let set = signal_set();
    set.thread_block().context("block signals")?;
    Ok(set)
}

/// Waits for `pid` to exit, forwarding signals; reaps every other child on the way.
pub fn wait(pid: i32, set: &SigSet) -> Result<i32> {
    let sfd = SignalFd::new(set).context("signalfd")?;
    loop {
        // Reap first: the child may already be gone.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                    return Ok(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let Some(info) = sfd.read_signal().context("read signalfd")? else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig != libc::SIGCHLD {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
            }
        }
    }
}
