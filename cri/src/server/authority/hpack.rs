//! HPACK (RFC 7541) decoding of request header blocks, just far enough to find the
//! `:authority` of each request, with a rewrite of the fields h2 would refuse.
//!
//! The decoder follows the client's dynamic table entry for entry, as h2's decoder does, so
//! every index in a block means to us what it means to h2. It keeps, per entry, only its
//! size and, for `:authority` entries, the value: nothing else is needed to find an
//! `:authority` and to evict as the peers do. A block whose `:authority` h2 would accept
//! (checked with the same `http::uri::Authority` parser h2 uses) is left as it is: the
//! caller forwards the client's bytes unchanged. Otherwise only the offending field is
//! re-encoded, so that h2's table stays identical to the client's and every later block
//! (typically an indexed reference to the same `:authority`) again passes through
//! untouched:
//! - a field that adds nothing to the table (indexed static `:authority` with its empty
//!   value, literal without indexing, literal never indexed) becomes the same
//!   representation with the value `localhost`;
//! - a literal with incremental indexing keeps its name and gets a value of the same
//!   length, the original with every byte outside `A-Za-z0-9-._~` replaced by `-`
//!   (`/run/crust/crust.sock` becomes `-run-crust-crust.sock`), so the entry h2 adds has
//!   the size of the client's and evictions stay in step;
//! - an empty value with incremental indexing is added under the name
//!   [`EMPTY_AUTHORITY_NAME`] (same entry size): the request then has no `:authority`,
//!   which h2 accepts.
//!
//! The table's capacity is h2's default SETTINGS_HEADER_TABLE_SIZE (4096), which crustd
//! keeps.

use std::collections::VecDeque;

use super::huffman;

/// The dynamic table capacity the server allows (h2's default, RFC 7540 6.5.2).
pub const MAX_TABLE_SIZE: usize = 4096;

/// The name under which an empty `:authority` is indexed instead (10 bytes, as
/// `:authority`).
pub const EMPTY_AUTHORITY_NAME: &[u8; 10] = b"x-empty-au";

/// What replaces an `:authority` where the length is free.
const REPLACEMENT: &[u8] = b"localhost";

/// Names of the static table (RFC 7541 Appendix A), index 1..=61; only their lengths
/// matter here (entry sizes), and that index 1 is `:authority`.
const STATIC_NAMES: [&str; 61] = [
    ":authority",
    ":method",
    ":method",
    ":path",
    ":path",
    ":scheme",
    ":scheme",
    ":status",
    ":status",
    ":status",
    ":status",
    ":status",
    ":status",
    ":status",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "accept",
    "access-control-allow-origin",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-range",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "link",
    "location",
    "max-forwards",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "refresh",
    "retry-after",
    "server",
    "set-cookie",
    "strict-transport-security",
    "transfer-encoding",
    "user-agent",
    "vary",
    "via",
    "www-authenticate",
];

/// A header block that does not decode.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The block ends inside a field.
    #[error("header block truncated")]
    Truncated,
    /// An integer does not fit.
    #[error("integer overflow in header block")]
    Overflow,
    /// A field refers to an index neither table has.
    #[error("index {0} is in neither table")]
    Index(usize),
    /// A dynamic table size update above what the server allows.
    #[error("table size update to {0} over {MAX_TABLE_SIZE}")]
    SizeUpdate(usize),
    /// A Huffman-coded string does not decode.
    #[error("huffman")]
    Huffman(#[from] huffman::Error),
}

/// One dynamic table entry, as far as it matters here.
struct Entry {
    name_len: usize,
    value_len: usize,
    /// The value of an `:authority` entry; `None` for every other name.
    authority: Option<Box<[u8]>>,
}

impl Entry {
    /// name + value + 32 octets (RFC 7541 4.1).
    fn size(&self) -> usize {
        self.name_len + self.value_len + 32
    }
}

/// The decoder state of one connection's client-to-server direction.
pub struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    capacity: usize,
    /// Decoded strings land here (reused).
    scratch: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            capacity: MAX_TABLE_SIZE,
            scratch: Vec::new(),
        }
    }
}

/// Whether h2 accepts `value` as `:authority` (the check h2's server makes).
pub fn acceptable(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// `value` with every byte outside the URI unreserved set replaced by `-`.
fn sanitized(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => b,
            _ => b'-',
        })
        .collect()
}

/// A field's name: whether it is `:authority`, and its length.
struct Name {
    authority: bool,
    len: usize,
}

impl Decoder {
    /// Decodes one complete header block. `Ok(None)`: forward it as it is; `Ok(Some(b))`:
    /// forward `b` instead.
    pub fn block(&mut self, block: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let mut out: Option<Vec<u8>> = None;
        let mut pos = 0;
        while pos < block.len() {
            let start = pos;
            let first = block[pos];
            let replacement = if first & 0x80 != 0 {
                let (index, n) = integer(&block[pos..], 7)?;
                pos += n;
                self.indexed(index)?
            } else if first & 0xc0 == 0x40 {
                self.literal(block, &mut pos, 6, true)?
            } else if first & 0xe0 == 0x20 {
                let (size, n) = integer(&block[pos..], 5)?;
                pos += n;
                if size > MAX_TABLE_SIZE {
                    return Err(Error::SizeUpdate(size));
                }
                self.capacity = size;
                self.evict(0);
                None
            } else {
                // 0000 without indexing, 0001 never indexed.
                self.literal(block, &mut pos, 4, false)?
            };
            match (replacement, &mut out) {
                (Some(r), Some(o)) => o.extend_from_slice(&r),
                (Some(r), None) => {
                    let mut o = Vec::with_capacity(block.len() + r.len());
                    o.extend_from_slice(&block[..start]);
                    o.extend_from_slice(&r);
                    out = Some(o);
                }
                (None, Some(o)) => o.extend_from_slice(&block[start..pos]),
                (None, None) => {}
            }
        }
        Ok(out)
    }

    /// An indexed field; its replacement if it is a refused `:authority`.
    fn indexed(&self, index: usize) -> Result<Option<Vec<u8>>, Error> {
        match index {
            0 => Err(Error::Index(0)),
            // `:authority` with an empty value.
            1 => Ok(Some(field(0x00, 4, 1, REPLACEMENT))),
            2..=61 => Ok(None),
            _ => {
                // Dynamic entries hold what h2 holds, which it accepted when added.
                self.dynamic(index)?;
                Ok(None)
            }
        }
    }

    fn dynamic(&self, index: usize) -> Result<&Entry, Error> {
        index
            .checked_sub(62)
            .and_then(|i| self.table.get(i))
            .ok_or(Error::Index(index))
    }

    /// A literal field starting at `*pos` (prefix `bits` for the name index); advances
    /// `*pos` past it, adds it to the table if `indexing`, and returns its replacement if
    /// it is a refused `:authority`.
    fn literal(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        bits: u8,
        indexing: bool,
    ) -> Result<Option<Vec<u8>>, Error> {
        let first = block[*pos];
        let (index, n) = integer(&block[*pos..], bits)?;
        *pos += n;
        let name = match index {
            0 => {
                self.scratch.clear();
                *pos += string(&block[*pos..], &mut self.scratch)?;
                Name {
                    authority: self.scratch == b":authority",
                    len: self.scratch.len(),
                }
            }
            1..=61 => Name {
                authority: index == 1,
                len: STATIC_NAMES[index - 1].len(),
            },
            _ => {
                let e = self.dynamic(index)?;
                Name {
                    authority: e.authority.is_some(),
                    len: e.name_len,
                }
            }
        };
        self.scratch.clear();
        *pos += string(&block[*pos..], &mut self.scratch)?;
        let value_len = self.scratch.len();
        if !name.authority {
            if indexing {
                self.insert(Entry {
                    name_len: name.len,
                    value_len,
                    authority: None,
                });
            }
            return Ok(None);
        }
        let ok = acceptable(&self.scratch);
        if !indexing {
            return Ok((!ok).then(|| field(first & 0xf0, 4, 1, REPLACEMENT)));
        }
        if ok {
            self.insert(Entry {
                name_len: name.len,
                value_len,
                authority: Some(self.scratch.as_slice().into()),
            });
            return Ok(None);
        }
        if value_len == 0 {
            // Same entry size under another name: `:authority` (10) + "" (0).
            let mut r = vec![0x40];
            push_string(&mut r, EMPTY_AUTHORITY_NAME);
            push_string(&mut r, b"");
            self.insert(Entry {
                name_len: EMPTY_AUTHORITY_NAME.len(),
                value_len: 0,
                authority: None,
            });
            return Ok(Some(r));
        }
        let value = sanitized(&self.scratch);
        let r = field(0x40, 6, 1, &value);
        self.insert(Entry {
            name_len: name.len,
            value_len: value.len(),
            authority: Some(value.into()),
        });
        Ok(Some(r))
    }

    /// Adds an entry at the front, evicting from the back (RFC 7541 4.4).
    fn insert(&mut self, e: Entry) {
        let size = e.size();
        if size > self.capacity {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.table.push_front(e);
    }

    /// Evicts until `room` more octets fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.capacity {
            match self.table.pop_back() {
                Some(e) => self.size -= e.size(),
                None => break,
            }
        }
    }
}

/// Decodes an HPACK integer with a `bits`-bit prefix (RFC 7541 5.1): (value, octets used).
fn integer(buf: &[u8], bits: u8) -> Result<(usize, usize), Error> {
    let mask = (1usize << bits) - 1;
    let first = usize::from(*buf.first().ok_or(Error::Truncated)?) & mask;
    if first < mask {
        return Ok((first, 1));
    }
    let mut value = mask;
    let mut shift = 0u32;
    for (i, &b) in buf.iter().enumerate().skip(1) {
        if shift > 21 {
            return Err(Error::Overflow);
        }
        value += usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
        shift += 7;
    }
    Err(Error::Truncated)
}

/// Decodes a string literal (RFC 7541 5.2) into `out`; returns the octets used.
fn string(buf: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
    let huffman = buf.first().ok_or(Error::Truncated)? & 0x80 != 0;
    let (len, n) = integer(buf, 7)?;
    let data = buf.get(n..n + len).ok_or(Error::Truncated)?;
    if huffman {
        huffman::decode(data, out)?;
    } else {
        out.extend_from_slice(data);
    }
    Ok(n + len)
}

/// Appends an HPACK integer with a `bits`-bit prefix; `flags` fills the high bits.
fn push_integer(out: &mut Vec<u8>, flags: u8, bits: u8, value: usize) {
    let mask = (1usize << bits) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a raw (not Huffman-coded) string literal.
fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    push_integer(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// A literal field with an indexed name: pattern `flags`, `bits`-bit name index.
fn field(flags: u8, bits: u8, name_index: usize, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 3);
    push_integer(&mut out, flags, bits, name_index);
    push_string(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn integers_as_in_rfc_c1() {
        assert_eq!(integer(&[0x0a], 5), Ok((10, 1)));
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, 3)));
        assert_eq!(integer(&[0x2a], 8), Ok((42, 1)));
        assert_eq!(integer(&[0x1f, 0x9a], 5), Err(Error::Truncated));
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff], 5),
            Err(Error::Overflow)
        );
        for v in [0, 14, 15, 16, 127, 128, 1337, 1 << 20] {
            let mut b = Vec::new();
            push_integer(&mut b, 0x40, 6, v);
            assert_eq!(integer(&b, 6), Ok((v, b.len())));
        }
    }

    #[test]
    fn rfc_c3_and_c4_requests_keep_the_table_size() {
        // RFC 7541 C.3 (plain) and C.4 (Huffman): three requests on one connection; the
        // table sizes after each are 57, 110 and 164.
        let c3 = [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ];
        let c4 = [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ];
        for blocks in [c3, c4] {
            let mut d = Decoder::default();
            for (b, size) in blocks.iter().zip([57, 110, 164]) {
                assert_eq!(d.block(&hex(b)), Ok(None));
                assert_eq!(d.size, size);
            }
        }
    }

    #[test]
    fn refused_authorities_are_rewritten_to_accepted_ones() {
        let mut d = Decoder::default();
        // Literal with incremental indexing, static name, raw "/a b".
        let b = hex("41 04 2f61 2062");
        let out = d.block(&b).unwrap().unwrap();
        assert_eq!(out, hex("41 04 2d61 2d62"));
        // The indexed reference to it now means the rewritten entry: unchanged.
        assert_eq!(d.block(&[0xbe]), Ok(None));
        assert_eq!(d.size, 10 + 4 + 32);
        // Without indexing: localhost, no table change.
        let out = d.block(&hex("01 04 2f61 2062")).unwrap().unwrap();
        assert_eq!(out, [&[0x01, 9][..], b"localhost"].concat());
        assert_eq!(d.size, 46);
        // Bad index.
        assert_eq!(d.block(&[0xc0]), Err(Error::Index(64)));
        // Size update over the allowed 4096.
        assert_eq!(d.block(&hex("3fe1 1f")), Ok(None));
        assert_eq!(d.block(&hex("3fe2 1f")), Err(Error::SizeUpdate(4097)));
    }

    #[test]
    fn sanitized_values_are_always_acceptable() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert!(acceptable(&sanitized(&all)));
        for b in 0..=255u8 {
            assert!(acceptable(&sanitized(&[b])), "octet {b}");
            assert!(acceptable(&sanitized(&[b, b':', b])), "octet {b}");
        }
        assert!(!acceptable(b"/run/crust.sock"));
        assert!(!acceptable(b"tmp%2Fcrust.sock"));
        assert!(!acceptable(b""));
        assert!(acceptable(b"localhost"));
    }
}
