//! SPDY/3 name/value header blocks and their zlib compression.
//!
//! A header block is `u32 count` then per pair `u32 len, name, u32 len, value` (big endian);
//! several values of one name are joined by NUL. Names travel lowercase. Each direction of a
//! connection owns one zlib stream primed with [`SPDY3_DICTIONARY`](super::dictionary::SPDY3_DICTIONARY)
//! for the whole life of the connection; every block ends with a sync flush so the peer can
//! decode it without waiting for more. Invariant: a failed (de)compression poisons the context,
//! so callers must treat [`HeaderError`] as fatal for the connection.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::SPDY3_DICTIONARY;

/// Largest decompressed header block accepted (a zlib bomb guard).
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// Errors of header block coding.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("compressing a header block failed: {0}")]
    Compress(String),
    #[error("decompressing a header block failed: {0}")]
    Decompress(String),
    #[error("header block larger than {MAX_HEADER_BLOCK} bytes")]
    TooLarge,
    #[error("header block truncated at byte {offset}")]
    Truncated { offset: usize },
    #[error("header block has {extra} bytes after its last pair")]
    TrailingBytes { extra: usize },
    #[error("header name at byte {offset} is empty")]
    EmptyName { offset: usize },
    #[error("header {name:?} is not valid UTF-8")]
    NotUtf8 { name: String },
    #[error("header {name:?} appears twice")]
    Duplicate { name: String },
}

/// An ordered list of header name/value pairs (names lowercase).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// An empty header list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Adds a header (the name is lowercased, as SPDY requires).
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Builder form of [`Headers::insert`].
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Serializes to an uncompressed header block. Repeated names are joined with NUL.
    pub fn to_block(&self) -> Vec<u8> {
        let mut merged: Vec<(&str, String)> = Vec::new();
        for (k, v) in &self.0 {
            match merged.iter_mut().find(|(n, _)| n == k) {
                Some((_, existing)) => {
                    existing.push('\0');
                    existing.push_str(v);
                }
                None => merged.push((k, v.clone())),
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(merged.len() as u32).to_be_bytes());
        for (k, v) in merged {
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    /// Parses an uncompressed header block.
    pub fn from_block(block: &[u8]) -> Result<Self, HeaderError> {
        let mut off = 0usize;
        let count = read_u32(block, &mut off)? as usize;
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let name_at = off;
            let name = read_bytes(block, &mut off)?;
            if name.is_empty() {
                return Err(HeaderError::EmptyName { offset: name_at });
            }
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| HeaderError::NotUtf8 {
                    name: String::from_utf8_lossy(name).into_owned(),
                })?
                .to_ascii_lowercase();
            let value = read_bytes(block, &mut off)?;
            let value = std::str::from_utf8(value)
                .map_err(|_| HeaderError::NotUtf8 { name: name.clone() })?;
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(HeaderError::Duplicate { name });
            }
            for v in value.split('\0') {
                pairs.push((name.clone(), v.to_string()));
            }
        }
        if off != block.len() {
            return Err(HeaderError::TrailingBytes {
                extra: block.len() - off,
            });
        }
        Ok(Self(pairs))
    }
}

fn read_u32(buf: &[u8], off: &mut usize) -> Result<u32, HeaderError> {
    let bytes = buf
        .get(*off..*off + 4)
        .ok_or(HeaderError::Truncated { offset: *off })?;
    *off += 4;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn read_bytes<'a>(buf: &'a [u8], off: &mut usize) -> Result<&'a [u8], HeaderError> {
    let len = read_u32(buf, off)? as usize;
    let end = off
        .checked_add(len)
        .ok_or(HeaderError::Truncated { offset: *off })?;
    let bytes = buf
        .get(*off..end)
        .ok_or(HeaderError::Truncated { offset: *off })?;
    *off = end;
    Ok(bytes)
}

/// The sending direction's zlib context.
pub struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    /// A compressor primed with the SPDY/3 dictionary.
    pub fn new() -> Result<Self, HeaderError> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(&SPDY3_DICTIONARY)
            .map_err(|e| HeaderError::Compress(e.to_string()))?;
        Ok(Self { z })
    }

    /// Compresses one header block, ending with a sync flush.
    pub fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>, HeaderError> {
        let input = headers.to_block();
        let mut out = Vec::with_capacity(input.len() + 64);
        let start_in = self.z.total_in();
        loop {
            let consumed = (self.z.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let before_out = out.len();
            self.z
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| HeaderError::Compress(e.to_string()))?;
            let consumed = (self.z.total_in() - start_in) as usize;
            // Done once all input is in and the flush left spare room (nothing pending).
            if consumed == input.len() && out.len() < out.capacity() && out.len() >= before_out {
                break;
            }
        }
        Ok(out)
    }
}

/// The receiving direction's zlib context.
pub struct HeaderDecompressor {
    z: Decompress,
}

impl HeaderDecompressor {
    /// A decompressor that will supply the SPDY/3 dictionary when the stream asks for it.
    pub fn new() -> Self {
        Self {
            z: Decompress::new(true),
        }
    }

    /// Decompresses one header block (all of `input` must be consumed) and parses it.
    pub fn decompress(&mut self, input: &[u8]) -> Result<Headers, HeaderError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 64);
        let start_in = self.z.total_in();
        loop {
            let consumed = (self.z.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(HeaderError::TooLarge);
                }
                out.reserve(out.capacity().max(256));
            }
            let before_out = out.len();
            match self
                .z
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => {
                    return Err(HeaderError::Decompress(
                        "zlib stream ended inside a SPDY connection".into(),
                    ))
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(&SPDY3_DICTIONARY)
                        .map_err(|e| HeaderError::Decompress(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(HeaderError::Decompress(e.to_string())),
            }
            let consumed_now = (self.z.total_in() - start_in) as usize;
            let progressed = consumed_now != consumed || out.len() != before_out;
            if consumed_now == input.len() && out.len() < out.capacity() {
                break;
            }
            if !progressed {
                return Err(HeaderError::Decompress(
                    "truncated compressed header block".into(),
                ));
            }
        }
        if out.len() > MAX_HEADER_BLOCK {
            return Err(HeaderError::TooLarge);
        }
        Headers::from_block(&out)
    }
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_layout_is_the_spec_layout() {
        let h = Headers::new()
            .with("streamType", "error")
            .with("Port", "80");
        let block = h.to_block();
        let mut want = vec![0, 0, 0, 2];
        want.extend_from_slice(&[0, 0, 0, 10]);
        want.extend_from_slice(b"streamtype");
        want.extend_from_slice(&[0, 0, 0, 5]);
        want.extend_from_slice(b"error");
        want.extend_from_slice(&[0, 0, 0, 4]);
        want.extend_from_slice(b"port");
        want.extend_from_slice(&[0, 0, 0, 2]);
        want.extend_from_slice(b"80");
        assert_eq!(block, want);
        assert_eq!(Headers::from_block(&block).unwrap(), h);
    }

    #[test]
    fn repeated_names_join_with_nul() {
        let h = Headers::new().with("a", "1").with("a", "2");
        let block = h.to_block();
        assert_eq!(&block[..4], &[0, 0, 0, 1]);
        assert_eq!(Headers::from_block(&block).unwrap(), h);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        assert!(matches!(
            Headers::from_block(&[0, 0]),
            Err(HeaderError::Truncated { .. })
        ));
        assert!(matches!(
            Headers::from_block(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]),
            Err(HeaderError::Truncated { .. })
        ));
        assert!(matches!(
            Headers::from_block(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::EmptyName { .. })
        ));
        assert!(matches!(
            Headers::from_block(&[0, 0, 0, 0, 1]),
            Err(HeaderError::TrailingBytes { extra: 1 })
        ));
        let mut dup = Headers::new().with("a", "1").to_block();
        dup[3] = 2;
        dup.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 0]);
        assert!(matches!(
            Headers::from_block(&dup),
            Err(HeaderError::Duplicate { .. })
        ));
    }

    #[test]
    fn compression_context_persists_across_blocks() {
        let mut c = HeaderCompressor::new().unwrap();
        let mut d = HeaderDecompressor::new();
        for i in 0..50 {
            let h = Headers::new()
                .with("streamtype", "stdout")
                .with("requestid", i.to_string());
            let z = c.compress(&h).unwrap();
            assert_eq!(d.decompress(&z).unwrap(), h);
        }
        // A long value that needs several output buffers.
        let big = Headers::new().with("x", "y".repeat(100_000));
        let z = c.compress(&big).unwrap();
        assert_eq!(d.decompress(&z).unwrap(), big);
    }

    #[test]
    fn first_block_announces_the_spdy_dictionary() {
        let mut c = HeaderCompressor::new().unwrap();
        let z = c.compress(&Headers::new()).unwrap();
        // zlib header: CMF 0x78, FLG with FDICT (0x20), then the dictionary's Adler-32.
        assert_eq!(z[0], 0x78);
        assert_ne!(z[1] & 0x20, 0);
        assert_eq!(((z[0] as u16) << 8 | z[1] as u16) % 31, 0);
        let adler = u32::from_be_bytes([z[2], z[3], z[4], z[5]]);
        assert_eq!(adler, adler32(&SPDY3_DICTIONARY));
        // A sync flush ends with the empty stored block 00 00 ff ff.
        assert_eq!(&z[z.len() - 4..], &[0, 0, 0xff, 0xff]);
    }

    /// Adler-32 (RFC 1950 §8.2), computed independently of zlib.
    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn garbage_compressed_input_is_an_error_not_a_panic() {
        let mut d = HeaderDecompressor::new();
        assert!(d.decompress(&[1, 2, 3, 4, 5, 6, 7, 8]).is_err());
        let mut d = HeaderDecompressor::new();
        assert!(d.decompress(&[]).is_err());
    }
}
