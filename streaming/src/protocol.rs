//! Protocol names, header names and the small codecs both ends share: subprotocol
//! negotiation, the WebSocket channel framing and the stream of resize JSON objects.
//!
//! WebSocket framing (k8s wsstream): every binary message starts with one channel byte; in
//! the base64 variants messages are text, the first character is the channel digit and the
//! rest is standard base64. In `v5.channel.k8s.io` a message on channel 255 carrying one byte
//! `n` means "channel n is closed" (the client's stdin EOF).

use base64::Engine;
use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

use crate::backend::TerminalSize;

/// Header carrying the SPDY subprotocol offers and the server's choice.
pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
/// Header listing the server's subprotocols when negotiation fails.
pub const HEADER_ACCEPTED_PROTOCOL_VERSIONS: &str = "X-Accepted-Stream-Protocol-Versions";
/// The `Upgrade` token of SPDY.
pub const SPDY_31: &str = "SPDY/3.1";

pub const REMOTECOMMAND_V1: &str = "channel.k8s.io";
pub const REMOTECOMMAND_V2: &str = "v2.channel.k8s.io";
pub const REMOTECOMMAND_V3: &str = "v3.channel.k8s.io";
pub const REMOTECOMMAND_V4: &str = "v4.channel.k8s.io";
pub const REMOTECOMMAND_V5: &str = "v5.channel.k8s.io";
pub const BASE64_V1: &str = "base64.channel.k8s.io";
pub const BASE64_V4: &str = "v4.base64.channel.k8s.io";
pub const PORTFORWARD_V1: &str = "portforward.k8s.io";

/// SPDY remotecommand subprotocols the server accepts, most preferred first.
pub const SPDY_REMOTECOMMAND: &[&str] = &[
    REMOTECOMMAND_V4,
    REMOTECOMMAND_V3,
    REMOTECOMMAND_V2,
    REMOTECOMMAND_V1,
];
/// WebSocket remotecommand subprotocols ("" = the client asked for none).
pub const WS_REMOTECOMMAND: &[&str] = &[
    REMOTECOMMAND_V5,
    REMOTECOMMAND_V4,
    BASE64_V4,
    REMOTECOMMAND_V1,
    BASE64_V1,
    "",
];
/// SPDY portforward subprotocols.
pub const SPDY_PORTFORWARD: &[&str] = &[PORTFORWARD_V1];
/// WebSocket portforward subprotocols.
pub const WS_PORTFORWARD: &[&str] = &[REMOTECOMMAND_V4, BASE64_V4, ""];

/// SPDY stream header naming the stream's role.
pub const HEADER_STREAM_TYPE: &str = "streamType";
pub const HEADER_PORT: &str = "port";
pub const HEADER_REQUEST_ID: &str = "requestID";
pub const STREAM_ERROR: &str = "error";
pub const STREAM_STDIN: &str = "stdin";
pub const STREAM_STDOUT: &str = "stdout";
pub const STREAM_STDERR: &str = "stderr";
pub const STREAM_RESIZE: &str = "resize";
pub const STREAM_DATA: &str = "data";

/// WebSocket remotecommand channels.
pub const CH_STDIN: u8 = 0;
pub const CH_STDOUT: u8 = 1;
pub const CH_STDERR: u8 = 2;
pub const CH_ERROR: u8 = 3;
pub const CH_RESIZE: u8 = 4;
/// v5 close signal channel.
pub const CH_CLOSE: u8 = 255;

/// Remotecommand protocol generations, as they change server behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RcVersion {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl RcVersion {
    /// The version behind a negotiated subprotocol name.
    pub fn of(protocol: &str) -> RcVersion {
        match protocol {
            REMOTECOMMAND_V5 => RcVersion::V5,
            REMOTECOMMAND_V4 | BASE64_V4 => RcVersion::V4,
            REMOTECOMMAND_V3 => RcVersion::V3,
            REMOTECOMMAND_V2 => RcVersion::V2,
            _ => RcVersion::V1,
        }
    }

    /// Whether the error stream carries a JSON `Status` (v4+) rather than plain text.
    pub fn json_status(self) -> bool {
        self >= RcVersion::V4
    }

    /// Whether a resize stream exists (v3+).
    pub fn resizes(self) -> bool {
        self >= RcVersion::V3
    }
}

/// Picks the first of the client's offers (in the client's order) the server supports.
pub fn negotiate<'a>(offers: &[String], supported: &[&'a str]) -> Option<&'a str> {
    offers
        .iter()
        .find_map(|o| supported.iter().find(|s| **s == o.as_str()).copied())
}

/// Splits header values that may be repeated and/or comma-separated.
pub fn header_list<'a>(values: impl Iterator<Item = &'a http::HeaderValue>) -> Vec<String> {
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether a WebSocket subprotocol is a base64 (text) variant.
pub fn is_base64(protocol: &str) -> bool {
    protocol.contains("base64")
}

/// Frames `data` for `channel`.
pub fn ws_encode(channel: u8, data: &[u8], base64: bool) -> Message {
    if base64 {
        let mut s = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        s.push(char::from(b'0' + channel.min(9)));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
        Message::Text(s.into())
    } else {
        let mut v = Vec::with_capacity(1 + data.len());
        v.push(channel);
        v.extend_from_slice(data);
        Message::Binary(v.into())
    }
}

/// A decoded WebSocket message.
#[derive(Debug, PartialEq, Eq)]
pub enum WsFrame {
    Data(u8, Bytes),
    Close,
    /// Control or empty messages carrying nothing for the channels.
    Skip,
}

/// Why a message could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WsFrameError {
    #[error("text message on a binary channel protocol")]
    UnexpectedText,
    #[error("binary message on a base64 channel protocol")]
    UnexpectedBinary,
    #[error("bad channel digit {0:?}")]
    BadChannel(char),
    #[error("invalid base64 payload on channel {0}")]
    BadBase64(u8),
}

/// Decodes a message of a channel protocol.
pub fn ws_decode(msg: Message, base64: bool) -> Result<WsFrame, WsFrameError> {
    match msg {
        Message::Binary(b) if !base64 => {
            if b.is_empty() {
                return Ok(WsFrame::Skip);
            }
            Ok(WsFrame::Data(b[0], b.slice(1..)))
        }
        Message::Binary(_) => Err(WsFrameError::UnexpectedBinary),
        Message::Text(t) if base64 => {
            let s = t.as_str();
            let Some(first) = s.chars().next() else {
                return Ok(WsFrame::Skip);
            };
            let ch = first.to_digit(10).ok_or(WsFrameError::BadChannel(first))? as u8;
            let data = base64::engine::general_purpose::STANDARD
                .decode(&s[1..])
                .map_err(|_| WsFrameError::BadBase64(ch))?;
            Ok(WsFrame::Data(ch, data.into()))
        }
        Message::Text(_) => Err(WsFrameError::UnexpectedText),
        Message::Close(_) => Ok(WsFrame::Close),
        _ => Ok(WsFrame::Skip),
    }
}

/// Incremental decoder of the resize stream: concatenated JSON objects, possibly split
/// across reads. Malformed input is an error naming the bytes' offset.
#[derive(Default)]
pub struct ResizeDecoder {
    buf: Vec<u8>,
}

/// Bytes of a resize stream that are not terminal sizes.
#[derive(Debug, thiserror::Error)]
#[error("malformed terminal size message")]
pub struct ResizeError(#[source] serde_json::Error);

impl ResizeDecoder {
    /// Feeds bytes; returns every complete size in them.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<TerminalSize>, ResizeError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut stream =
            serde_json::Deserializer::from_slice(&self.buf).into_iter::<TerminalSize>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                Some(Ok(size)) => {
                    out.push(size);
                    consumed = stream.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    self.buf.clear();
                    return Err(ResizeError(e));
                }
                None => {
                    consumed = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        if self.buf.len() > 4096 {
            self.buf.clear();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_client_order() {
        let offers = vec![REMOTECOMMAND_V2.to_string(), REMOTECOMMAND_V4.to_string()];
        assert_eq!(
            negotiate(&offers, SPDY_REMOTECOMMAND),
            Some(REMOTECOMMAND_V2)
        );
        assert_eq!(negotiate(&["x".into()], SPDY_REMOTECOMMAND), None);
        assert_eq!(RcVersion::of(REMOTECOMMAND_V3), RcVersion::V3);
        assert!(RcVersion::V4.json_status() && !RcVersion::V3.json_status());
    }

    #[test]
    fn ws_frames_round_trip_in_both_encodings() {
        for b64 in [false, true] {
            let m = ws_encode(CH_STDOUT, b"hi\x00\xff", b64);
            assert_eq!(
                ws_decode(m, b64).unwrap(),
                WsFrame::Data(CH_STDOUT, Bytes::from_static(b"hi\x00\xff"))
            );
        }
        assert_eq!(
            ws_encode(2, b"ab", false),
            Message::Binary(vec![2, b'a', b'b'].into())
        );
        assert_eq!(ws_encode(2, b"ab", true), Message::Text("2YWI=".into()));
        assert_eq!(
            ws_decode(Message::Text("x".into()), true),
            Err(WsFrameError::BadChannel('x'))
        );
        assert_eq!(
            ws_decode(Message::Text("1!!".into()), true),
            Err(WsFrameError::BadBase64(1))
        );
        assert_eq!(
            ws_decode(Message::Text("1".into()), false),
            Err(WsFrameError::UnexpectedText)
        );
    }

    #[test]
    fn resize_stream_splits_and_joins() {
        let mut d = ResizeDecoder::default();
        let a = TerminalSize {
            width: 80,
            height: 24,
        };
        assert_eq!(d.push(br#"{"Width":80,"#).unwrap(), vec![]);
        assert_eq!(
            d.push(br#""Height":24}{"Width":1,"Height":2}"#).unwrap(),
            vec![
                a,
                TerminalSize {
                    width: 1,
                    height: 2
                }
            ]
        );
        assert!(d.push(b"]]").is_err());
        assert_eq!(
            d.push(b"\n{\"Width\":80,\"Height\":24}\n").unwrap(),
            vec![a]
        );
    }
}
