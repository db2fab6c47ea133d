//! Any `:authority` works: an adapter around each accepted connection that makes the
//! request headers h2 would refuse acceptable before h2 reads them.
//!
//! Why: kubelet 1.26-1.30, crictl and critest up to 1.30, grpc-go before it sent
//! `localhost`, grpc-python (the %-encoded socket path) and grpc-java send the unix socket
//! path as HTTP/2 `:authority`. h2, under tonic, checks `:authority` with
//! `http::uri::Authority` and answers such a request with RST_STREAM PROTOCOL_ERROR
//! (hyperium/h2#487, open upstream; h2 has no option to relax it), so every such client
//! failed at its first call. No crate does this: HPACK crates exist (`hpack` is
//! unmaintained since 2016; `loona-hpack` rebuilds a HashMap-based Huffman decoder for every
//! string, far too slow for a per-request path), and none rewrites a header block while
//! keeping the peers' dynamic tables in step, so the small decoder here is ours.
//!
//! How: [`AuthorityFix`] wraps the connection's read side. The bytes a read returns are
//! scanned in place ([`frames::Scanner::pass`]): the preface and every frame but HEADERS
//! and CONTINUATION go to h2 as read, without a copy. A header block is collected, decoded
//! ([`hpack`]) and forwarded unchanged unless its `:authority` would be refused, in which
//! case that one field is re-encoded (see [`hpack`] for how the tables stay in step). The
//! write side is untouched. `CRUST_AUTHORITY_FIX=0` in crustd's environment turns the
//! adapter off (benchmarks compare both).

mod frames;
mod hpack;
mod huffman;

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Octets read at once while a header block is collected.
const READ_CHUNK: usize = 16 * 1024;

/// Whether crustd wraps its connections (`CRUST_AUTHORITY_FIX=0` turns it off).
pub fn enabled() -> bool {
    std::env::var_os("CRUST_AUTHORITY_FIX").is_none_or(|v| v != "0")
}

/// A connection whose client-to-server header blocks are made acceptable to h2.
pub struct AuthorityFix<S> {
    inner: S,
    scanner: frames::Scanner,
    /// Read but not yet scanned: starts at a frame that needs the scanner's attention.
    stash: Vec<u8>,
    /// Scanned and ready for h2, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            scanner: frames::Scanner::default(),
            stash: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            eof: false,
        }
    }

    /// Scans the stash: moves what is ready into `out`, keeps an incomplete frame.
    fn drain_stash(&mut self) {
        let mut pos = 0;
        loop {
            let rest = &self.stash[pos..];
            let n = self.scanner.pass(rest);
            self.out.extend_from_slice(&rest[..n]);
            pos += n;
            let rest = &self.stash[pos..];
            if rest.is_empty() {
                break;
            }
            match self.scanner.whole_frame(rest, &mut self.out) {
                None => break,
                Some(0) => {}
                Some(len) => {
                    self.scanner.frame(&rest[..len], &mut self.out);
                    pos += len;
                }
            }
        }
        self.stash.drain(..pos);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.out_pos < me.out.len() {
                let n = buf.remaining().min(me.out.len() - me.out_pos);
                buf.put_slice(&me.out[me.out_pos..me.out_pos + n]);
                me.out_pos += n;
                if me.out_pos == me.out.len() {
                    me.out.clear();
                    me.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if !me.stash.is_empty() {
                me.drain_stash();
                if !me.out.is_empty() {
                    continue;
                }
                if me.eof {
                    // Cut off inside a frame: h2 gets what there is.
                    me.out.append(&mut me.stash);
                    continue;
                }
                // The frame at the stash's start is incomplete: read more behind it.
                let have = me.stash.len();
                me.stash.resize(have + READ_CHUNK, 0);
                let mut rb = ReadBuf::new(&mut me.stash[have..]);
                let r = Pin::new(&mut me.inner).poll_read(cx, &mut rb);
                let n = rb.filled().len();
                me.stash.truncate(have + n);
                ready!(r)?;
                me.eof = n == 0;
                continue;
            }
            // Fast path: read straight into h2's buffer, keep back what needs scanning.
            let start = buf.filled().len();
            ready!(Pin::new(&mut me.inner).poll_read(cx, buf))?;
            let new = &buf.filled()[start..];
            if new.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let n = me.scanner.pass(new);
            if n < new.len() {
                me.stash.extend_from_slice(&new[n..]);
                buf.set_filled(start + n);
            }
            if n > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests;
