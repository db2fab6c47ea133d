//! Output tee for attach: a stream's raw bytes copied to subscriber FIFOs opened by the
//! client (the attach request of the daemon <-> shim contract,
//! [`crust_shim_contract::ATTACH_ANNOTATION`]).
//!
//! [`Tee`] belongs to one output stream the shim copies (CRI log, or a terminal's output).
//! The copy task hands every chunk to the log writer first and then to [`Tee::send`],
//! which never waits: a chunk is written to each subscriber with a non-blocking
//! `write(2)`; what the pipe does not take is queued for that subscriber's flusher task.
//!
//! Invariants: bytes reach a subscriber in stream order, without gaps, until it is
//! dropped; a subscriber holds at most [`MAX_BUFFERED`] queued bytes (beyond that it is
//! dropped and its FIFO closed); a subscriber whose reader went away (EPIPE, or EPOLLERR
//! while idle) is dropped;
//! after [`Tee::end`] no subscriber can join and every FIFO is closed once its queue is
//! flushed (bounded by [`FINAL_FLUSH`]), so readers see EOF.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use crate::error::{Result, ShimError};

/// Bytes queued for a subscriber that does not keep up before it is dropped.
pub const MAX_BUFFERED: usize = 1 << 20;
/// How long a subscriber's queue may take to flush after its stream ended.
pub const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// One stream's subscribers. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Tee {
    inner: Arc<Mutex<TeeState>>,
}

#[derive(Default)]
struct TeeState {
    subs: Vec<Arc<Sub>>,
    ended: bool,
}

/// One subscriber: the FIFO's write end and what the pipe has not taken yet.
struct Sub {
    fd: AsyncFd<OwnedFd>,
    q: Mutex<Queue>,
    wake: Notify,
}

#[derive(Default)]
struct Queue {
    buf: VecDeque<u8>,
    /// Dropped (slow or gone): the flusher exits at once, closing the FIFO.
    dropped: bool,
    /// The stream ended: the flusher exits once the queue is empty.
    ending: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Outcome of offering bytes to a subscriber.
enum Offer {
    Kept,
    Drop,
}

impl Sub {
    /// Writes or queues `data`; never waits.
    fn offer(&self, data: &[u8]) -> Offer {
        let mut q = lock(&self.q);
        if q.dropped {
            return Offer::Drop;
        }
        let mut rest = data;
        if q.buf.is_empty() {
            match nix::unistd::write(self.fd.get_ref(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    q.dropped = true;
                    drop(q);
                    self.wake.notify_one();
                    return Offer::Drop;
                }
            }
            if rest.is_empty() {
                return Offer::Kept;
            }
        }
        if q.buf.len() + rest.len() > MAX_BUFFERED {
            q.dropped = true;
            drop(q);
            self.wake.notify_one();
            return Offer::Drop;
        }
        q.buf.extend(rest);
        drop(q);
        self.wake.notify_one();
        Offer::Kept
    }

    /// Writes as much of the queue as the pipe takes. `Err` means drop the subscriber.
    fn flush_some(&self) -> std::io::Result<()> {
        let mut q = lock(&self.q);
        while !q.buf.is_empty() {
            let (a, _) = q.buf.as_slices();
            match nix::unistd::write(self.fd.get_ref(), a) {
                Ok(n) => {
                    q.buf.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    if e != nix::errno::Errno::EAGAIN {
                        q.dropped = true;
                    }
                    return Err(e.into());
                }
            }
        }
        if q.buf.capacity() > 64 * 1024 {
            q.buf = VecDeque::new();
        }
        Ok(())
    }
}

/// Writes a subscriber's queued bytes whenever its pipe has room; with nothing queued,
/// watches for the reader going away (EPOLLERR on the write end) so an idle stream does
/// not keep a gone subscriber's FIFO open. Removes the subscriber from `tee` when done.
async fn flusher(sub: Arc<Sub>, tee: Weak<Mutex<TeeState>>) {
    flush_until_done(&sub).await;
    if let Some(t) = tee.upgrade() {
        lock(&t).subs.retain(|s| !Arc::ptr_eq(s, &sub));
    }
}

async fn flush_until_done(sub: &Sub) {
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let (empty, ending) = {
            let q = lock(&sub.q);
            if q.dropped {
                return;
            }
            (q.buf.is_empty(), q.ending)
        };
        if empty {
            if ending {
                return;
            }
            tokio::select! {
                g = sub.fd.writable() => {
                    let Ok(mut g) = g else { return };
                    let r = g.ready();
                    if r.is_write_closed() || r.is_error() {
                        lock(&sub.q).dropped = true;
                        return;
                    }
                    // Edge-triggered: wait for the next change of the pipe's state.
                    g.clear_ready();
                }
                _ = sub.wake.notified() => {}
            }
            continue;
        }
        if ending && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + FINAL_FLUSH);
        }
        // Without a deadline this branch just loops once a day.
        let until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            g = sub.fd.writable() => {
                let Ok(mut g) = g else { return };
                match g.try_io(|_| sub.flush_some()) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Ok(Err(_)) => return,
                    Err(_would_block) => {}
                }
            }
            _ = sub.wake.notified() => {}
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

/// Opens a subscriber FIFO's write end (the reader must already be there).
pub fn open_fifo(path: &Path) -> Result<OwnedFd> {
    if !path.is_absolute() {
        return Err(ShimError::InvalidRequest(format!(
            "attach fifo {} is not absolute",
            path.display()
        )));
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| ShimError::io("open attach fifo (no reader?)", path, e))?;
    let ft = f
        .metadata()
        .map_err(|e| ShimError::io("stat attach fifo", path, e))?
        .file_type();
    if !ft.is_fifo() {
        return Err(ShimError::InvalidRequest(format!(
            "attach target {} is not a fifo",
            path.display()
        )));
    }
    Ok(f.into())
}

impl Tee {
    /// Adds a subscriber writing to `fd` (a FIFO opened with [`open_fifo`]).
    /// Fails, closing `fd`, if the stream has ended.
    pub fn subscribe(&self, fd: OwnedFd, what: &str) -> Result<()> {
        let fd = crate::stdio::async_fd(fd)
            .map_err(|e| ShimError::io("register attach fifo", what, e))?;
        let sub = Arc::new(Sub {
            fd,
            q: Mutex::new(Queue::default()),
            wake: Notify::new(),
        });
        let mut st = lock(&self.inner);
        if st.ended {
            return Err(ShimError::WrongState {
                id: what.into(),
                state: "ended",
                op: "attach",
            });
        }
        st.subs.push(sub.clone());
        drop(st);
        tokio::spawn(flusher(sub, Arc::downgrade(&self.inner)));
        Ok(())
    }

    /// Whether the stream has ended (no subscriber can join).
    pub fn ended(&self) -> bool {
        lock(&self.inner).ended
    }

    /// Number of live subscribers.
    pub fn subscribers(&self) -> usize {
        lock(&self.inner).subs.len()
    }

    /// Hands a chunk of the stream to every subscriber; never waits.
    pub fn send(&self, data: &[u8]) {
        let mut st = lock(&self.inner);
        if st.subs.is_empty() {
            return;
        }
        st.subs.retain(|s| matches!(s.offer(data), Offer::Kept));
    }

    /// The stream ended: no new subscribers; each FIFO closes once its queue is flushed.
    pub fn end(&self) {
        let subs = {
            let mut st = lock(&self.inner);
            st.ended = true;
            std::mem::take(&mut st.subs)
        };
        for s in subs {
            lock(&s.q).ending = true;
            s.wake.notify_one();
        }
    }
}
