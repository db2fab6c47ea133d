//! The client-to-server HTTP/2 byte stream (RFC 9113), as far as header blocks go: the
//! connection preface and every frame other than HEADERS and CONTINUATION pass through
//! as they come (never buffered whole); a HEADERS frame and its CONTINUATIONs are
//! collected until END_HEADERS, their fragment is given to [`hpack::Decoder`], and either
//! the original frames or a re-framed rewritten block go on.
//!
//! Anything that does not parse (a CONTINUATION out of place, another frame inside a
//! header block, bad padding, a header frame longer than [`MAX_FRAME`], an HPACK error)
//! makes the scanner hand over what it holds and every later byte unchanged
//! ([`Scanner::is_opaque`]): h2 then sees exactly what the client sent and answers with
//! its own connection error.

use super::hpack;

/// Frame header length.
pub const HEAD: usize = 9;
/// The largest frame payload h2 accepts by default (SETTINGS_MAX_FRAME_SIZE, which crustd
/// keeps); rewritten blocks are framed within it.
pub const MAX_FRAME: usize = 16_384;
/// The most header block octets collected before giving up (h2 itself refuses header
/// lists over 16 KiB and more than a few CONTINUATIONs).
const MAX_BLOCK: usize = 1 << 20;

const PREFACE_LEN: usize = 24;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the connection preface, this many octets left.
    Preface(usize),
    /// At a frame header.
    Head,
    /// In the payload of a pass-through frame, this many octets left.
    Payload(usize),
    /// Given up: everything passes.
    Opaque,
}

/// A header block being collected.
struct Block {
    stream: u32,
    /// END_STREAM and PRIORITY of the HEADERS frame.
    flags: u8,
    /// The HEADERS frame's priority fields.
    priority: Option<[u8; 5]>,
    /// The frames as received.
    raw: Vec<u8>,
    /// The header block fragments, concatenated.
    fragment: Vec<u8>,
}

/// The frame scanner of one connection.
pub struct Scanner {
    state: State,
    block: Option<Block>,
    hpack: hpack::Decoder,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            state: State::Preface(PREFACE_LEN),
            block: None,
            hpack: hpack::Decoder::default(),
        }
    }
}

/// (payload length, type, flags, stream id) of a frame header.
fn head(h: &[u8]) -> (usize, u8, u8, u32) {
    let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
    (len, h[3], h[4], stream)
}

fn push_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

impl Scanner {
    /// Whether everything from here on passes unchanged.
    #[cfg(test)]
    pub fn is_opaque(&self) -> bool {
        self.state == State::Opaque
    }

    /// How many leading octets of `data` pass through unchanged; stops at a frame that
    /// needs [`Scanner::frame`] (HEADERS, CONTINUATION, anything inside a header block)
    /// or at an incomplete frame header.
    pub fn pass(&mut self, data: &[u8]) -> usize {
        let mut i = 0;
        loop {
            match self.state {
                State::Opaque => return data.len(),
                State::Preface(left) | State::Payload(left) => {
                    let n = left.min(data.len() - i);
                    i += n;
                    if n < left {
                        self.state = match self.state {
                            State::Preface(_) => State::Preface(left - n),
                            _ => State::Payload(left - n),
                        };
                        return i;
                    }
                    self.state = State::Head;
                }
                State::Head => {
                    let Some(h) = data.get(i..i + HEAD) else {
                        return i;
                    };
                    let (len, kind, _, _) = head(h);
                    if self.block.is_some() || kind == HEADERS || kind == CONTINUATION {
                        return i;
                    }
                    i += HEAD;
                    self.state = State::Payload(len);
                }
            }
        }
    }

    /// If `data` starts with a whole frame that [`Scanner::pass`] stopped at, its length
    /// (header included); `None` if more octets are needed. A header frame too long to
    /// collect makes the scanner opaque and returns 0.
    pub fn whole_frame(&mut self, data: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let h = data.get(..HEAD)?;
        let (len, ..) = head(h);
        if len > MAX_FRAME {
            self.give_up(out);
            return Some(0);
        }
        (data.len() >= HEAD + len).then_some(HEAD + len)
    }

    /// Takes one whole frame at a stop of [`Scanner::pass`]; appends what goes on to `out`.
    pub fn frame(&mut self, frame: &[u8], out: &mut Vec<u8>) {
        let (_, kind, flags, stream) = head(frame);
        let payload = &frame[HEAD..];
        match (kind, self.block.as_mut()) {
            (HEADERS, None) => {
                let Some((priority, fragment)) = headers_payload(flags, payload) else {
                    out.extend_from_slice(frame);
                    return self.give_up(out);
                };
                self.block = Some(Block {
                    stream,
                    flags: flags & (END_STREAM | PRIORITY),
                    priority,
                    raw: frame.to_vec(),
                    fragment: fragment.to_vec(),
                });
            }
            (CONTINUATION, Some(b)) if b.stream == stream => {
                b.raw.extend_from_slice(frame);
                b.fragment.extend_from_slice(payload);
                if b.raw.len() > MAX_BLOCK {
                    return self.give_up(out);
                }
            }
            _ => {
                // Out of order: h2 refuses it; let it see the frames as they came.
                self.give_up(out);
                out.extend_from_slice(frame);
                return;
            }
        }
        if flags & END_HEADERS != 0 {
            self.finish(out);
        }
    }

    /// The block is complete: decode it and forward it, rewritten or not.
    fn finish(&mut self, out: &mut Vec<u8>) {
        let Some(b) = self.block.take() else {
            return;
        };
        match self.hpack.block(&b.fragment) {
            Ok(None) => out.extend_from_slice(&b.raw),
            Ok(Some(block)) => frame_block(out, &b, &block),
            Err(e) => {
                tracing::debug!("authority adapter: header block does not decode ({e}); passing the connection through");
                out.extend_from_slice(&b.raw);
                self.state = State::Opaque;
            }
        }
    }

    /// Hands over any block in progress as received; from now on everything passes.
    fn give_up(&mut self, out: &mut Vec<u8>) {
        if let Some(b) = self.block.take() {
            out.extend_from_slice(&b.raw);
        }
        self.state = State::Opaque;
    }
}

/// The priority fields and the header block fragment of a HEADERS payload.
fn headers_payload(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let (pad, mut rest) = if flags & PADDED != 0 {
        let (&p, rest) = payload.split_first()?;
        (usize::from(p), rest)
    } else {
        (0, payload)
    };
    let priority = if flags & PRIORITY != 0 {
        let p: [u8; 5] = rest.get(..5)?.try_into().ok()?;
        rest = &rest[5..];
        Some(p)
    } else {
        None
    };
    let end = rest.len().checked_sub(pad)?;
    Some((priority, &rest[..end]))
}

/// Writes `block` as a HEADERS frame (priority kept, no padding) and as many
/// CONTINUATIONs as it needs, each within [`MAX_FRAME`].
fn frame_block(out: &mut Vec<u8>, b: &Block, block: &[u8]) {
    let prio_len = if b.priority.is_some() { 5 } else { 0 };
    let first = block.len().min(MAX_FRAME - prio_len);
    let (head_part, mut rest) = block.split_at(first);
    let mut flags = b.flags;
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    push_head(out, prio_len + first, HEADERS, flags, b.stream);
    if let Some(p) = &b.priority {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(head_part);
    while !rest.is_empty() {
        let n = rest.len().min(MAX_FRAME);
        let (part, r) = rest.split_at(n);
        rest = r;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        push_head(out, n, CONTINUATION, flags, b.stream);
        out.extend_from_slice(part);
    }
}
