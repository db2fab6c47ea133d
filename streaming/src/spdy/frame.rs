//! SPDY/3.1 frames and their wire codec.
//!
//! Control frames: `1 | version(15) | type(16) | flags(8) | length(24) | payload`; data frames:
//! `0 | stream-id(31) | flags(8) | length(24) | payload`. [`FrameCodec`] owns the connection's
//! two header-compression contexts, so one codec serves exactly one connection and frames must
//! pass through it in wire order. Decoding never panics on hostile input: every malformed
//! frame is a [`FrameError`] naming what was wrong. Unknown control frame types are skipped,
//! as the spec asks.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::headers::{HeaderCompressor, HeaderDecompressor, HeaderError, Headers};

/// The only protocol version spoken.
pub const VERSION: u16 = 3;
/// FLAG_FIN on SYN_STREAM, SYN_REPLY, HEADERS and DATA.
pub const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS.
pub const FLAG_SETTINGS_CLEAR: u8 = 0x01;
/// Largest payload a frame can carry (24-bit length).
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;
/// SETTINGS id of SETTINGS_INITIAL_WINDOW_SIZE.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// RST_STREAM status codes (SPDY/3 §2.6.3).
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const UNSUPPORTED_VERSION: u32 = 4;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const FLOW_CONTROL_ERROR: u32 = 7;
    pub const STREAM_IN_USE: u32 = 8;
    pub const STREAM_ALREADY_CLOSED: u32 = 9;
}

/// GOAWAY status codes.
pub mod goaway {
    pub const OK: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INTERNAL_ERROR: u32 = 2;
}

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// One SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        slot: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("control frame has unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    #[error("{kind} frame has invalid length {length}")]
    BadLength { kind: &'static str, length: usize },
    #[error("{kind} frame uses stream id 0")]
    ZeroStreamId { kind: &'static str },
    #[error("{kind} frame has invalid value: {what}")]
    BadValue {
        kind: &'static str,
        what: &'static str,
    },
    #[error("payload of {0} bytes exceeds the 24-bit frame length")]
    TooLarge(usize),
    #[error("header block of {kind} frame for stream {stream_id}")]
    HeaderBlock {
        kind: &'static str,
        stream_id: u32,
        #[source]
        source: HeaderError,
    },
    #[error("creating the header compressor")]
    Init(#[source] HeaderError),
}

impl Frame {
    /// The frame's stream, if it belongs to one.
    pub fn stream_id(&self) -> Option<u32> {
        match self {
            Frame::SynStream { stream_id, .. }
            | Frame::SynReply { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::Data { stream_id, .. } => Some(*stream_id),
            Frame::WindowUpdate { stream_id, .. } if *stream_id != 0 => Some(*stream_id),
            _ => None,
        }
    }
}

/// Encoder/decoder for one connection (owns both zlib contexts).
pub struct FrameCodec {
    /// Created on first use: a codec used only for decoding never pays for a deflate state.
    compressor: Option<HeaderCompressor>,
    decompressor: HeaderDecompressor,
}

impl FrameCodec {
    /// A fresh codec for a new connection.
    pub fn new() -> Result<Self, FrameError> {
        Ok(Self {
            compressor: None,
            decompressor: HeaderDecompressor::new(),
        })
    }

    /// Appends the wire form of `frame` to `dst`.
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        match frame {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                check_len(data.len())?;
                dst.put_u32(stream_id & 0x7fff_ffff);
                dst.put_u32(((*flags as u32) << 24) | data.len() as u32);
                dst.put_slice(data);
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                flags,
                headers,
            } => {
                let block = self.compress(headers, "SYN_STREAM", *stream_id)?;
                let mut p = BytesMut::with_capacity(10 + block.len());
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(associated_to & 0x7fff_ffff);
                p.put_u8((priority & 0x07) << 5);
                p.put_u8(*slot);
                p.put_slice(&block);
                control(dst, TYPE_SYN_STREAM, *flags, &p)?;
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.compress(headers, "SYN_REPLY", *stream_id)?;
                let mut p = BytesMut::with_capacity(4 + block.len());
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_slice(&block);
                control(dst, TYPE_SYN_REPLY, *flags, &p)?;
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.compress(headers, "HEADERS", *stream_id)?;
                let mut p = BytesMut::with_capacity(4 + block.len());
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_slice(&block);
                control(dst, TYPE_HEADERS, *flags, &p)?;
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = BytesMut::with_capacity(8);
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(*status);
                control(dst, TYPE_RST_STREAM, 0, &p)?;
            }
            Frame::Settings { flags, entries } => {
                let mut p = BytesMut::with_capacity(4 + 8 * entries.len());
                p.put_u32(entries.len() as u32);
                for e in entries {
                    p.put_u32(((e.flags as u32) << 24) | (e.id & 0x00ff_ffff));
                    p.put_u32(e.value);
                }
                control(dst, TYPE_SETTINGS, *flags, &p)?;
            }
            Frame::Ping { id } => control(dst, TYPE_PING, 0, &id.to_be_bytes())?,
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut p = BytesMut::with_capacity(8);
                p.put_u32(last_good_stream_id & 0x7fff_ffff);
                p.put_u32(*status);
                control(dst, TYPE_GOAWAY, 0, &p)?;
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = BytesMut::with_capacity(8);
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(delta & 0x7fff_ffff);
                control(dst, TYPE_WINDOW_UPDATE, 0, &p)?;
            }
        }
        Ok(())
    }

    fn compress(
        &mut self,
        headers: &Headers,
        kind: &'static str,
        stream_id: u32,
    ) -> Result<Vec<u8>, FrameError> {
        let compressor = match &mut self.compressor {
            Some(c) => c,
            None => self
                .compressor
                .insert(HeaderCompressor::new().map_err(FrameError::Init)?),
        };
        compressor
            .compress(headers)
            .map_err(|source| FrameError::HeaderBlock {
                kind,
                stream_id,
                source,
            })
    }

    /// Takes one complete frame off the front of `src`; `Ok(None)` means more bytes are
    /// needed. Unknown control frame types are consumed and skipped.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            if src.len() < 8 {
                return Ok(None);
            }
            let word = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
            let flags = src[4];
            let length = u32::from_be_bytes([0, src[5], src[6], src[7]]) as usize;
            if src.len() < 8 + length {
                src.reserve(8 + length - src.len());
                return Ok(None);
            }
            src.advance(8);
            let mut payload = src.split_to(length).freeze();
            if word & 0x8000_0000 == 0 {
                let stream_id = word & 0x7fff_ffff;
                if stream_id == 0 {
                    return Err(FrameError::ZeroStreamId { kind: "DATA" });
                }
                return Ok(Some(Frame::Data {
                    stream_id,
                    flags,
                    data: payload,
                }));
            }
            let version = ((word >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(FrameError::UnsupportedVersion(version));
            }
            let frame_type = (word & 0xffff) as u16;
            let frame = match frame_type {
                TYPE_SYN_STREAM => {
                    need(&payload, "SYN_STREAM", |l| l >= 10)?;
                    let stream_id = payload.get_u32() & 0x7fff_ffff;
                    let associated_to = payload.get_u32() & 0x7fff_ffff;
                    let priority = payload.get_u8() >> 5;
                    let slot = payload.get_u8();
                    nonzero(stream_id, "SYN_STREAM")?;
                    let headers = self.decompress(&payload, "SYN_STREAM", stream_id)?;
                    Frame::SynStream {
                        stream_id,
                        associated_to,
                        priority,
                        slot,
                        flags,
                        headers,
                    }
                }
                TYPE_SYN_REPLY | TYPE_HEADERS => {
                    let kind = if frame_type == TYPE_SYN_REPLY {
                        "SYN_REPLY"
                    } else {
                        "HEADERS"
                    };
                    need(&payload, kind, |l| l >= 4)?;
                    let stream_id = payload.get_u32() & 0x7fff_ffff;
                    nonzero(stream_id, kind)?;
                    let headers = self.decompress(&payload, kind, stream_id)?;
                    if frame_type == TYPE_SYN_REPLY {
                        Frame::SynReply {
                            stream_id,
                            flags,
                            headers,
                        }
                    } else {
                        Frame::Headers {
                            stream_id,
                            flags,
                            headers,
                        }
                    }
                }
                TYPE_RST_STREAM => {
                    need(&payload, "RST_STREAM", |l| l == 8)?;
                    let stream_id = payload.get_u32() & 0x7fff_ffff;
                    let status = payload.get_u32();
                    nonzero(stream_id, "RST_STREAM")?;
                    if status == 0 {
                        return Err(FrameError::BadValue {
                            kind: "RST_STREAM",
                            what: "status 0",
                        });
                    }
                    Frame::RstStream { stream_id, status }
                }
                TYPE_SETTINGS => {
                    need(&payload, "SETTINGS", |l| l >= 4)?;
                    let n = payload.get_u32() as usize;
                    if n.checked_mul(8) != Some(payload.len()) {
                        return Err(FrameError::BadLength {
                            kind: "SETTINGS",
                            length,
                        });
                    }
                    let entries = (0..n)
                        .map(|_| {
                            let idw = payload.get_u32();
                            Setting {
                                flags: (idw >> 24) as u8,
                                id: idw & 0x00ff_ffff,
                                value: payload.get_u32(),
                            }
                        })
                        .collect();
                    Frame::Settings { flags, entries }
                }
                TYPE_PING => {
                    need(&payload, "PING", |l| l == 4)?;
                    Frame::Ping {
                        id: payload.get_u32(),
                    }
                }
                TYPE_GOAWAY => {
                    need(&payload, "GOAWAY", |l| l == 8)?;
                    Frame::GoAway {
                        last_good_stream_id: payload.get_u32() & 0x7fff_ffff,
                        status: payload.get_u32(),
                    }
                }
                TYPE_WINDOW_UPDATE => {
                    need(&payload, "WINDOW_UPDATE", |l| l == 8)?;
                    let stream_id = payload.get_u32() & 0x7fff_ffff;
                    let delta = payload.get_u32() & 0x7fff_ffff;
                    if delta == 0 {
                        return Err(FrameError::BadValue {
                            kind: "WINDOW_UPDATE",
                            what: "delta 0",
                        });
                    }
                    Frame::WindowUpdate { stream_id, delta }
                }
                // Unknown control frames are ignored (SPDY/3 §2.2.1).
                _ => continue,
            };
            return Ok(Some(frame));
        }
    }

    fn decompress(
        &mut self,
        block: &[u8],
        kind: &'static str,
        stream_id: u32,
    ) -> Result<Headers, FrameError> {
        self.decompressor
            .decompress(block)
            .map_err(|source| FrameError::HeaderBlock {
                kind,
                stream_id,
                source,
            })
    }
}

fn check_len(len: usize) -> Result<(), FrameError> {
    if len > MAX_FRAME_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    Ok(())
}

fn control(
    dst: &mut BytesMut,
    frame_type: u16,
    flags: u8,
    payload: &[u8],
) -> Result<(), FrameError> {
    check_len(payload.len())?;
    dst.put_u16(0x8000 | VERSION);
    dst.put_u16(frame_type);
    dst.put_u32(((flags as u32) << 24) | payload.len() as u32);
    dst.put_slice(payload);
    Ok(())
}

fn need(payload: &Bytes, kind: &'static str, ok: impl Fn(usize) -> bool) -> Result<(), FrameError> {
    if ok(payload.len()) {
        Ok(())
    } else {
        Err(FrameError::BadLength {
            kind,
            length: payload.len(),
        })
    }
}

fn nonzero(stream_id: u32, kind: &'static str) -> Result<(), FrameError> {
    if stream_id == 0 {
        Err(FrameError::ZeroStreamId { kind })
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
