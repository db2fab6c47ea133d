//! The signals crustd handles, installed first thing at start-up so that none of them can
//! kill it the default way (no log line, a stale socket):
//!
//! | signal | meaning |
//! |---|---|
//! | SIGTERM, SIGINT, SIGQUIT | shut down: stop serving, remove the socket, leave pods running |
//! | SIGHUP | reload what can change at run time (the config's `log_level`) |
//! | SIGUSR1, SIGUSR2 | ignored, with a log line |
//!
//! SIGPIPE is already ignored by the Rust runtime.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// What a received signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Shut down; the signal's name.
    Shutdown(&'static str),
    /// Reload the configuration (SIGHUP).
    Reload,
    /// Nothing; the signal's name.
    Ignored(&'static str),
}

/// The installed handlers.
pub struct Signals {
    term: Signal,
    int: Signal,
    quit: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
}

impl Signals {
    /// Installs the handlers (needs a tokio runtime).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// The next signal received.
    pub async fn next(&mut self) -> Event {
        tokio::select! {
            _ = self.term.recv() => Event::Shutdown("SIGTERM"),
            _ = self.int.recv() => Event::Shutdown("SIGINT"),
            _ = self.quit.recv() => Event::Shutdown("SIGQUIT"),
            _ = self.hup.recv() => Event::Reload,
            _ = self.usr1.recv() => Event::Ignored("SIGUSR1"),
            _ = self.usr2.recv() => Event::Ignored("SIGUSR2"),
        }
    }

    /// Waits for a shutdown signal; `on_reload` runs for each SIGHUP before it, other
    /// signals are logged and ignored.
    pub async fn until_shutdown(&mut self, mut on_reload: impl FnMut()) -> &'static str {
        loop {
            match self.next().await {
                Event::Shutdown(name) => {
                    tracing::info!(signal = name, "shutting down");
                    return name;
                }
                Event::Reload => {
                    tracing::info!(signal = "SIGHUP", "reloading the configuration");
                    on_reload();
                }
                Event::Ignored(name) => tracing::info!(signal = name, "signal ignored"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hup_reloads_usr1_is_ignored_term_shuts_down() {
        let mut s = Signals::install().unwrap();
        let me = nix::unistd::Pid::this();
        use nix::sys::signal::{kill, Signal as S};
        kill(me, S::SIGHUP).unwrap();
        assert_eq!(s.next().await, Event::Reload);
        kill(me, S::SIGUSR1).unwrap();
        assert_eq!(s.next().await, Event::Ignored("SIGUSR1"));
        kill(me, S::SIGTERM).unwrap();
        let mut reloads = 0;
        assert_eq!(s.until_shutdown(|| reloads += 1).await, "SIGTERM");
        assert_eq!(reloads, 0);
    }
}
