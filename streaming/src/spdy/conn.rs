//! A SPDY/3.1 connection: many bidirectional streams over one `AsyncRead + AsyncWrite`.
//!
//! Two tasks own the byte stream: a writer (the only place frames are encoded, so the
//! sending zlib context sees blocks in wire order) and a reader (the only decoder). Stream
//! ids: the client opens odd ids, the server even ones, each strictly increasing; a
//! SYN_STREAM breaking that is refused with RST_STREAM. A malformed frame ends the connection
//! with GOAWAY(PROTOCOL_ERROR); every open stream then reads [`ConnectionError::Lost`].
//!
//! Flow control, as Kubernetes' spdystream expects: spdystream neither sends WINDOW_UPDATE nor
//! honours it, so windows are not enforced when sending (a peer's WINDOW_UPDATE/SETTINGS are
//! accepted and ignored) — enforcing them would stall every transfer above 64 KiB to kubectl.
//! Towards peers that do flow control, the reader sends WINDOW_UPDATE for the stream and the
//! connection once the application has consumed half a default window, so a strict SPDY/3.1
//! sender never stalls either. Backpressure is real: each stream buffers at most
//! [`STREAM_QUEUE`] frames, after which the reader stops reading the socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::frame::{goaway, rst, Frame, FrameCodec, FrameError, FLAG_FIN, FLAG_UNIDIRECTIONAL};
use super::headers::Headers;

/// DATA frames buffered per stream before the reader applies backpressure.
pub const STREAM_QUEUE: usize = 64;
/// Largest DATA payload written.
pub const MAX_DATA_CHUNK: usize = 32 * 1024;
/// The default SPDY/3 window; WINDOW_UPDATE is sent after consuming half of it.
const DEFAULT_WINDOW: u32 = 64 * 1024;
/// How long [`Connection::close`] waits for the peer to hang up before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Errors of connection and stream operations.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    #[error("SPDY connection is closed")]
    Closed,
    #[error("SPDY connection lost: {0}")]
    Lost(String),
    #[error("stream {stream_id} was reset by the peer (status {status})")]
    Reset { stream_id: u32, status: u32 },
    #[error("peer sent GOAWAY; no new streams")]
    GoingAway,
    #[error("stream ids exhausted")]
    IdsExhausted,
    #[error("stream {stream_id} already finished writing")]
    WriteAfterFinish { stream_id: u32 },
}

enum Event {
    Data(Bytes),
    Reset(u32),
    Lost(String),
}

enum Out {
    Frame(Frame),
    Shutdown(oneshot::Sender<()>),
}

struct Slot {
    tx: mpsc::Sender<Event>,
    reset: Arc<AtomicBool>,
}

struct State {
    next_id: u32,
    last_remote_id: u32,
    streams: HashMap<u32, Slot>,
    pending: HashMap<u32, oneshot::Sender<Result<Headers, ConnectionError>>>,
    going_away: bool,
    lost: Option<String>,
}

struct Inner {
    role: Role,
    out: mpsc::Sender<Out>,
    state: Mutex<State>,
    /// Becomes true once the reader has stopped.
    reader_done: watch::Receiver<bool>,
    reader_abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked mid-update; the maps stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, frame: Frame) -> Result<(), ConnectionError> {
        self.out
            .send(Out::Frame(frame))
            .await
            .map_err(|_| ConnectionError::Closed)
    }
}

/// A handle on a SPDY connection; cheap to clone.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

/// Streams the peer opens, in order.
pub struct Incoming {
    rx: mpsc::Receiver<IncomingStream>,
}

impl Incoming {
    /// The next stream the peer opened; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<IncomingStream> {
        self.rx.recv().await
    }
}

/// A stream the peer opened that awaits [`accept`](Self::accept) or [`reject`](Self::reject).
pub struct IncomingStream {
    id: u32,
    headers: Headers,
    rx: mpsc::Receiver<Event>,
    reset: Arc<AtomicBool>,
    unidirectional: bool,
    conn: Connection,
}

impl IncomingStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The SYN_STREAM headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Answers with SYN_REPLY (empty headers, as kubelet does) and returns the stream.
    pub async fn accept(self) -> Result<Stream, ConnectionError> {
        self.conn
            .inner
            .send(Frame::SynReply {
                stream_id: self.id,
                flags: 0,
                headers: Headers::new(),
            })
            .await?;
        let finished = self.unidirectional;
        Ok(Stream::new(
            self.id,
            self.headers,
            self.rx,
            self.reset,
            self.conn,
            finished,
        ))
    }

    /// Refuses the stream with RST_STREAM(REFUSED_STREAM).
    pub async fn reject(self) -> Result<(), ConnectionError> {
        self.conn.inner.state().streams.remove(&self.id);
        self.conn
            .inner
            .send(Frame::RstStream {
                stream_id: self.id,
                status: rst::REFUSED_STREAM,
            })
            .await
    }
}

/// An open stream: a reading and a writing half.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    pub reader: StreamReader,
    pub writer: StreamWriter,
}

impl Stream {
    fn new(
        id: u32,
        headers: Headers,
        rx: mpsc::Receiver<Event>,
        reset: Arc<AtomicBool>,
        conn: Connection,
        finished: bool,
    ) -> Self {
        Self {
            id,
            headers,
            reader: StreamReader {
                id,
                rx,
                conn: conn.clone(),
                unacked: 0,
            },
            writer: StreamWriter {
                id,
                conn,
                reset,
                finished,
            },
        }
    }
}

/// The receiving half of a stream.
pub struct StreamReader {
    id: u32,
    rx: mpsc::Receiver<Event>,
    conn: Connection,
    unacked: u32,
}

impl StreamReader {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The next chunk of data; `Ok(None)` once the peer finished (FIN).
    pub async fn read(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        match self.rx.recv().await {
            None => Ok(None),
            Some(Event::Data(b)) => {
                self.unacked = self.unacked.saturating_add(b.len() as u32);
                if self.unacked >= DEFAULT_WINDOW / 2 {
                    let delta = std::mem::take(&mut self.unacked);
                    for stream_id in [self.id, 0] {
                        // Best effort: a closed connection surfaces on the next read.
                        let _ = self
                            .conn
                            .inner
                            .out
                            .try_send(Out::Frame(Frame::WindowUpdate { stream_id, delta }));
                    }
                }
                Ok(Some(b))
            }
            Some(Event::Reset(status)) => Err(ConnectionError::Reset {
                stream_id: self.id,
                status,
            }),
            Some(Event::Lost(why)) => Err(ConnectionError::Lost(why)),
        }
    }

    /// Reads until FIN, up to `limit` bytes (the rest is discarded).
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, ConnectionError> {
        let mut out = Vec::new();
        while let Some(b) = self.read().await? {
            let room = limit.saturating_sub(out.len());
            out.extend_from_slice(&b[..b.len().min(room)]);
        }
        Ok(out)
    }
}

/// The sending half of a stream. Dropping it without [`finish`](Self::finish) still sends FIN.
pub struct StreamWriter {
    id: u32,
    conn: Connection,
    reset: Arc<AtomicBool>,
    finished: bool,
}

impl StreamWriter {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Sends `data` as DATA frames.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), ConnectionError> {
        if self.finished {
            return Err(ConnectionError::WriteAfterFinish { stream_id: self.id });
        }
        for chunk in data.chunks(MAX_DATA_CHUNK) {
            if self.reset.load(Ordering::Acquire) {
                return Err(ConnectionError::Reset {
                    stream_id: self.id,
                    status: rst::CANCEL,
                });
            }
            self.conn
                .inner
                .send(Frame::Data {
                    stream_id: self.id,
                    flags: 0,
                    data: Bytes::copy_from_slice(chunk),
                })
                .await?;
        }
        Ok(())
    }

    /// Half-closes the stream (empty DATA with FIN). Idempotent.
    pub async fn finish(&mut self) -> Result<(), ConnectionError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        self.conn.inner.send(fin(self.id)).await
    }

    /// Aborts the stream with RST_STREAM(`status`).
    pub async fn reset(&mut self, status: u32) -> Result<(), ConnectionError> {
        self.finished = true;
        self.reset.store(true, Ordering::Release);
        self.conn.inner.state().streams.remove(&self.id);
        self.conn
            .inner
            .send(Frame::RstStream {
                stream_id: self.id,
                status,
            })
            .await
    }
}

fn fin(stream_id: u32) -> Frame {
    Frame::Data {
        stream_id,
        flags: FLAG_FIN,
        data: Bytes::new(),
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        if self.finished || self.reset.load(Ordering::Acquire) {
            return;
        }
        let frame = fin(self.id);
        match self.conn.inner.out.try_send(Out::Frame(frame)) {
            Err(mpsc::error::TrySendError::Full(out)) => {
                let tx = self.conn.inner.out.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = tx.send(out).await;
                    });
                }
            }
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Connection {
    /// Starts a connection over `io`; returns its handle and the peer-opened streams.
    pub fn new<T>(io: T, role: Role) -> Result<(Connection, Incoming), FrameError>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(256);
        let (in_tx, in_rx) = mpsc::channel(32);
        let (done_tx, done_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            role,
            out: out_tx,
            state: Mutex::new(State {
                next_id: if role == Role::Client { 1 } else { 2 },
                last_remote_id: 0,
                streams: HashMap::new(),
                pending: HashMap::new(),
                going_away: false,
                lost: None,
            }),
            reader_done: done_rx,
            reader_abort: Mutex::new(None),
        });
        let conn = Connection { inner };
        let encoder = FrameCodec::new()?;
        let decoder = FrameCodec::new()?;
        tokio::spawn(write_loop(wr, out_rx, encoder));
        let reader = tokio::spawn(read_loop(rd, decoder, conn.clone(), in_tx, done_tx));
        *conn
            .inner
            .reader_abort
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(reader.abort_handle());
        Ok((conn, Incoming { rx: in_rx }))
    }

    /// Which end we are.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// Opens a stream (SYN_STREAM) and waits for the peer's SYN_REPLY.
    pub async fn open_stream(&self, headers: Headers) -> Result<Stream, ConnectionError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let reset = Arc::new(AtomicBool::new(false));
        // SPDY requires a peer's stream ids to rise in the order their SYN_STREAMs arrive (a
        // lower one afterwards is a PROTOCOL_ERROR reset). So the id is taken and the frame
        // queued for the writer in one step under the state lock, with room in the queue
        // reserved first: allocating the id, unlocking, then awaiting the send let concurrent
        // openers queue id 3 before id 1 (port-forward's parallel connections were reset).
        // Once the connection is lost the writer may be gone too: say Lost, not Closed.
        let permit = match self.inner.out.reserve().await {
            Ok(p) => p,
            Err(_) => {
                return Err(match &self.inner.state().lost {
                    Some(why) => ConnectionError::Lost(why.clone()),
                    None => ConnectionError::Closed,
                })
            }
        };
        let id = {
            let mut st = self.inner.state();
            if let Some(why) = &st.lost {
                return Err(ConnectionError::Lost(why.clone()));
            }
            if st.going_away {
                return Err(ConnectionError::GoingAway);
            }
            let id = st.next_id;
            if id > 0x7fff_ffff {
                return Err(ConnectionError::IdsExhausted);
            }
            st.next_id += 2;
            st.streams.insert(
                id,
                Slot {
                    tx,
                    reset: reset.clone(),
                },
            );
            st.pending.insert(id, reply_tx);
            permit.send(Out::Frame(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: headers.clone(),
            }));
            id
        };
        match reply_rx.await {
            Ok(Ok(_reply_headers)) => Ok(Stream::new(id, headers, rx, reset, self.clone(), false)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnectionError::Closed),
        }
    }

    /// Sends GOAWAY, flushes and half-closes the socket, then waits (briefly) for the peer to
    /// hang up before dropping it. Idempotent.
    pub async fn close(&self) {
        let last = {
            let mut st = self.inner.state();
            st.going_away = true;
            st.last_remote_id
        };
        let _ = self
            .inner
            .send(Frame::GoAway {
                last_good_stream_id: last,
                status: goaway::OK,
            })
            .await;
        let (tx, rx) = oneshot::channel();
        if self.inner.out.send(Out::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let mut done = self.inner.reader_done.clone();
        if tokio::time::timeout(CLOSE_GRACE, done.wait_for(|d| *d))
            .await
            .is_err()
        {
            self.abort();
        }
    }

    /// Drops the socket at once.
    pub fn abort(&self) {
        if let Some(h) = self
            .inner
            .reader_abort
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
        let _ = self.inner.out.try_send(Out::Shutdown(oneshot::channel().0));
    }

    /// Resolves once the peer's side of the connection is gone.
    pub async fn closed(&self) {
        let mut done = self.inner.reader_done.clone();
        let _ = done.wait_for(|d| *d).await;
    }
}

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::Receiver<Out>, mut codec: FrameCodec) {
    tokio::pin!(wr);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut shutdown = None;
        // Coalesce whatever is queued into one write.
        while let Some(out) = next.take() {
            match out {
                Out::Frame(f) => {
                    if let Err(e) = codec.encode(&f, &mut buf) {
                        tracing::warn!(error = %e, "dropping unencodable SPDY frame");
                    }
                }
                Out::Shutdown(done) => {
                    shutdown = Some(done);
                    break;
                }
            }
            if buf.len() < 256 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        if !buf.is_empty() {
            if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                break;
            }
            buf.clear();
        }
        if let Some(done) = shutdown {
            let _ = wr.shutdown().await;
            let _ = done.send(());
            return;
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_loop<R: AsyncRead>(
    rd: R,
    mut codec: FrameCodec,
    conn: Connection,
    incoming: mpsc::Sender<IncomingStream>,
    done: watch::Sender<bool>,
) {
    tokio::pin!(rd);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let why = loop {
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => handle(&conn, frame, &incoming).await,
            Ok(None) => match rd.read_buf(&mut buf).await {
                Ok(0) => break "peer closed the connection".to_string(),
                Ok(_) => {}
                Err(e) => break format!("reading: {e}"),
            },
            Err(e) => {
                tracing::debug!(error = %e, "malformed SPDY frame; closing the connection");
                let last = conn.inner.state().last_remote_id;
                let _ = conn
                    .inner
                    .send(Frame::GoAway {
                        last_good_stream_id: last,
                        status: goaway::PROTOCOL_ERROR,
                    })
                    .await;
                let _ = conn
                    .inner
                    .out
                    .send(Out::Shutdown(oneshot::channel().0))
                    .await;
                break format!("protocol error: {e}");
            }
        }
    };
    let (streams, pending) = {
        let mut st = conn.inner.state();
        st.lost = Some(why.clone());
        (
            std::mem::take(&mut st.streams),
            std::mem::take(&mut st.pending),
        )
    };
    for (_, slot) in streams {
        let _ = slot.tx.try_send(Event::Lost(why.clone()));
    }
    for (_, p) in pending {
        let _ = p.send(Err(ConnectionError::Lost(why.clone())));
    }
    let _ = done.send(true);
}

async fn handle(conn: &Connection, frame: Frame, incoming: &mpsc::Sender<IncomingStream>) {
    let inner = &conn.inner;
    match frame {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => {
            let peer_parity = if inner.role == Role::Server { 1 } else { 0 };
            let (tx, rx) = mpsc::channel(STREAM_QUEUE);
            let reset = Arc::new(AtomicBool::new(false));
            let refuse = {
                let mut st = inner.state();
                if stream_id % 2 != peer_parity || stream_id <= st.last_remote_id {
                    Some(rst::PROTOCOL_ERROR)
                } else if st.going_away {
                    Some(rst::REFUSED_STREAM)
                } else {
                    st.last_remote_id = stream_id;
                    if flags & FLAG_FIN == 0 {
                        st.streams.insert(
                            stream_id,
                            Slot {
                                tx,
                                reset: reset.clone(),
                            },
                        );
                    }
                    None
                }
            };
            if let Some(status) = refuse {
                let _ = inner.send(Frame::RstStream { stream_id, status }).await;
                return;
            }
            let stream = IncomingStream {
                id: stream_id,
                headers,
                rx,
                reset,
                unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                conn: conn.clone(),
            };
            if incoming.send(stream).await.is_err() {
                inner.state().streams.remove(&stream_id);
                let _ = inner
                    .send(Frame::RstStream {
                        stream_id,
                        status: rst::REFUSED_STREAM,
                    })
                    .await;
            }
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            let waiter = inner.state().pending.remove(&stream_id);
            if let Some(w) = waiter {
                let _ = w.send(Ok(headers));
            }
            if flags & FLAG_FIN != 0 {
                inner.state().streams.remove(&stream_id);
            }
        }
        Frame::RstStream { stream_id, status } => {
            let (waiter, slot) = {
                let mut st = inner.state();
                (st.pending.remove(&stream_id), st.streams.remove(&stream_id))
            };
            if let Some(w) = waiter {
                let _ = w.send(Err(ConnectionError::Reset { stream_id, status }));
            }
            if let Some(slot) = slot {
                slot.reset.store(true, Ordering::Release);
                let _ = slot.tx.try_send(Event::Reset(status));
            }
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let tx = inner.state().streams.get(&stream_id).map(|s| s.tx.clone());
            if let Some(tx) = tx {
                // A dropped reader just discards data.
                if !data.is_empty() {
                    let _ = tx.send(Event::Data(data)).await;
                }
                if flags & FLAG_FIN != 0 {
                    inner.state().streams.remove(&stream_id);
                }
            }
        }
        Frame::Headers {
            stream_id, flags, ..
        } => {
            if flags & FLAG_FIN != 0 {
                inner.state().streams.remove(&stream_id);
            }
        }
        Frame::Ping { id } => {
            let ours = if inner.role == Role::Server { 0 } else { 1 };
            if id % 2 != ours {
                let _ = inner.send(Frame::Ping { id }).await;
            }
        }
        Frame::GoAway {
            last_good_stream_id,
            ..
        } => {
            let failed: Vec<_> = {
                let mut st = inner.state();
                st.going_away = true;
                let ids: Vec<u32> = st
                    .pending
                    .keys()
                    .copied()
                    .filter(|id| *id > last_good_stream_id)
                    .collect();
                ids.into_iter()
                    .filter_map(|id| st.pending.remove(&id))
                    .collect()
            };
            for w in failed {
                let _ = w.send(Err(ConnectionError::GoingAway));
            }
        }
        Frame::Settings { .. } | Frame::WindowUpdate { .. } => {}
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
