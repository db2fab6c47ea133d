//! Foreground waiting for `run` and `exec`: this process is the child subreaper of the
//! container process, forwards the signals it receives to it, and returns its exit code
//! (128 + signal when killed), as runc does. When the process has a terminal and no console
//! socket was given, the pty master is proxied to our stdin/stdout (stdin in raw mode while
//! it is a tty; window size follows SIGWINCH).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios;
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

/// Reaps children; returns the exit code once `pid` is gone.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                return Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Copies our terminal's window size to the pty.
fn copy_winsize(master: BorrowedFd<'_>) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a pointer to a live winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Copies what is readable on `from` to `to`; false on EOF/error.
fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::Error::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// Waits for `pid` to exit, forwarding signals (and proxying `console`); reaps every other
/// child on the way.
pub fn wait(pid: i32, set: &SigSet, console: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::new(set).context("signalfd")?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let saved = match &console {
        Some(m) => termios::tcgetattr(stdin.as_fd()).ok().inspect(|t| {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
            copy_winsize(m.as_fd());
        }),
        None => None,
    };
    let mut stdin_open = console.is_some();
    let code = loop {
        if let Some(code) = reap(pid) {
            break code;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &console {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).context("poll"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if let Some(m) = &console {
            if ready.get(1) == Some(&true) && !pump(m.as_fd(), stdout.as_fd()) {
                // The pty hung up (the process closed it); keep waiting for the exit.
            }
            if ready.get(2) == Some(&true) && !pump(stdin.as_fd(), m.as_fd()) {
                stdin_open = false;
            }
        }
        if ready[0] {
            if let Some(info) = sfd.read_signal().context("read signalfd")? {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH && console.is_some() {
                    if let Some(m) = &console {
                        copy_winsize(m.as_fd());
                    }
                } else if sig != libc::SIGCHLD {
                    if let Ok(s) = Signal::try_from(sig) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
                    }
                }
            }
        }
    };
    if let Some(m) = &console {
        // Drain what the process wrote just before exiting.
        let _ = nix::fcntl::fcntl(
            m,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        while pump(m.as_fd(), stdout.as_fd()) {}
    }
    if let Some(t) = saved {
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &t);
    }
    Ok(code)
}
