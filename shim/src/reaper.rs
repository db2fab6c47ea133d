//! Child reaping for a subreaper process.
//!
//! The shim is a child subreaper: every process of its containers ends up as its child.
//! One task waits for SIGCHLD and reaps *all* children with `waitpid(-1, WNOHANG)`.
//! Children the shim spawned itself through [`Reaper::spawn`] (runtime commands, logging
//! binaries, the publish binary) have a subscriber that gets the status; every other exit
//! (container inits, execs, orphans) goes to the exit channel the task service consumes.
//!
//! Invariant: nothing else in the process calls `wait*` (std's `Child::wait` would race
//! with the reaper), and [`Reaper::spawn`] registers the subscriber before the next await
//! point, so no exit can be reaped before its subscriber exists (single-threaded runtime).

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot};

/// One reaped child.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub pid: i32,
    /// Exit code, or 128 + signal number for a killed process (containerd's convention).
    pub status: u32,
    pub at: SystemTime,
}

/// Reaps children and dispatches their exit statuses.
#[derive(Clone)]
pub struct Reaper {
    subs: Arc<Mutex<HashMap<i32, oneshot::Sender<Exit>>>>,
}

impl Reaper {
    /// Starts the SIGCHLD loop on the current runtime; exits of processes not spawned
    /// through [`Reaper::spawn`] are sent to `exits`.
    pub fn start(exits: mpsc::UnboundedSender<Exit>) -> std::io::Result<Self> {
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        let reaper = Reaper {
            subs: Arc::new(Mutex::new(HashMap::new())),
        };
        let r = reaper.clone();
        tokio::spawn(async move {
            loop {
                r.reap_all(&exits);
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(reaper)
    }

    fn reap_all(&self, exits: &mpsc::UnboundedSender<Exit>) {
        loop {
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code as u32),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as u32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            let exit = Exit {
                pid,
                status,
                at: SystemTime::now(),
            };
            let sub = self.subs.lock().map(|mut s| s.remove(&pid)).unwrap_or(None);
            match sub {
                Some(tx) => {
                    let _ = tx.send(exit);
                }
                None => {
                    let _ = exits.send(exit);
                }
            }
        }
    }

    /// Spawns `cmd` and returns the child with a receiver for its exit.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<(Child, oneshot::Receiver<Exit>)> {
        let mut subs = self
            .subs
            .lock()
            .map_err(|_| std::io::Error::other("reaper lock"))?;
        let child = cmd.spawn()?;
        let (tx, rx) = oneshot::channel();
        subs.insert(child.id() as i32, tx);
        Ok((child, rx))
    }
}
