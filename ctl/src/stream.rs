//! What the streaming verbs (`exec -i/-t`, `attach`) share: the transport flag, a raw
//! local terminal that is restored on drop, and SIGWINCH turned into resize messages.

use std::os::fd::AsFd;

use crust_streaming::client::{remote_command, ClientStdio, RemoteCommandOptions, Transport};
use crust_streaming::TerminalSize;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::sync::mpsc;

/// `--transport` as crictl spells it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TransportArg {
    Spdy,
    Websocket,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Spdy => Transport::Spdy,
            TransportArg::Websocket => Transport::WebSocket,
        }
    }
}

/// Puts the local terminal (stdin) in raw mode until dropped.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// The local terminal's size (from stdout, else stdin).
fn terminal_size() -> Option<TerminalSize> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer; a bad fd only fails.
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if r == 0 && ws.ws_col > 0 {
            return Some(TerminalSize {
                width: ws.ws_col,
                height: ws.ws_row,
            });
        }
    }
    None
}

/// Sends the terminal size now and on every SIGWINCH.
fn watch_resizes() -> mpsc::Receiver<TerminalSize> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        if let Some(s) = terminal_size() {
            if tx.send(s).await.is_err() {
                return;
            }
        }
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some(s) = terminal_size() {
                if tx.send(s).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Runs a remotecommand session at `url` on the local stdio; returns the exit code.
pub async fn run_session(
    url: &str,
    transport: TransportArg,
    stdin: bool,
    tty: bool,
) -> anyhow::Result<i32> {
    let is_tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let raw = if tty && stdin && is_tty {
        RawTerminal::enter()
    } else {
        None
    };
    let io = ClientStdio {
        stdin: stdin.then(|| Box::new(tokio::io::stdin()) as _),
        stdout: Some(Box::new(tokio::io::stdout())),
        stderr: (!tty).then(|| Box::new(tokio::io::stderr()) as _),
        resize: tty.then(watch_resizes),
    };
    let r = remote_command(url, &RemoteCommandOptions::new(transport.into(), tty), io).await;
    drop(raw);
    Ok(r.map_err(|e| anyhow::anyhow!("{url}: {e}"))?.exit_code)
}
