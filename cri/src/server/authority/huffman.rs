//! The HPACK Huffman code (RFC 7541 Appendix B), decoding only.
//!
//! The code is canonical: the code of every symbol follows from the code lengths alone
//! (codes of one length are consecutive in symbol order, each length starts where the
//! previous one ended, shifted). So only the 257 lengths are stored, and the decoder is
//! built from them once: a 256-entry table for codes of up to 8 bits (the letters, digits
//! and punctuation that make up nearly all of gRPC's header values), and the canonical
//! per-length ranges for the longer ones.

use std::sync::OnceLock;

/// Code length in bits of each symbol 0..=255 and of EOS (256), RFC 7541 Appendix B.
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;
const FAST_BITS: u32 = 8;

/// A Huffman-coded string that does not decode.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The string holds the EOS symbol.
    #[error("EOS symbol inside a Huffman-coded string")]
    Eos,
    /// The string ends in something other than at most 7 one bits.
    #[error("bad padding at the end of a Huffman-coded string")]
    Padding,
}

struct Tables {
    /// Indexed by the next 8 bits: (symbol, code length), length 0 when the code is longer.
    fast: [(u8, u8); 256],
    /// Per length: first code of that length, and index of its symbol in `sorted`.
    first_code: [u32; MAX_LEN + 1],
    first_index: [u16; MAX_LEN + 1],
    count: [u16; MAX_LEN + 1],
    /// Symbols ordered by (code length, symbol): canonical code order.
    sorted: [u16; 257],
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Tables {
            fast: [(0, 0); 256],
            first_code: [0; MAX_LEN + 1],
            first_index: [0; MAX_LEN + 1],
            count: [0; MAX_LEN + 1],
            sorted: [0; 257],
        };
        for &len in &CODE_LENGTHS {
            t.count[usize::from(len)] += 1;
        }
        let mut code = 0u32;
        let mut index = 0u16;
        for len in 1..=MAX_LEN {
            t.first_code[len] = code;
            t.first_index[len] = index;
            code = (code + u32::from(t.count[len])) << 1;
            index += t.count[len];
        }
        let mut next = t.first_index;
        for sym in 0..257u16 {
            let len = usize::from(CODE_LENGTHS[usize::from(sym)]);
            t.sorted[usize::from(next[len])] = sym;
            next[len] += 1;
        }
        for (sym, len, code) in codes() {
            let len32 = u32::from(len);
            if len32 <= FAST_BITS && sym < 256 {
                let shift = FAST_BITS - len32;
                let base = (code << shift) as usize;
                for e in &mut t.fast[base..base + (1 << shift)] {
                    *e = (sym as u8, len);
                }
            }
        }
        t
    })
}

/// (symbol, length, code) of every symbol, from the canonical construction.
fn codes() -> impl Iterator<Item = (u16, u8, u32)> {
    let mut count = [0u32; MAX_LEN + 1];
    for &len in &CODE_LENGTHS {
        count[usize::from(len)] += 1;
    }
    let mut next = [0u32; MAX_LEN + 1];
    let mut code = 0u32;
    for len in 1..=MAX_LEN {
        next[len] = code;
        code = (code + count[len]) << 1;
    }
    (0..257u16).map(move |sym| {
        let len = CODE_LENGTHS[usize::from(sym)];
        let c = next[usize::from(len)];
        next[usize::from(len)] += 1;
        (sym, len, c)
    })
}

/// Decodes the Huffman-coded `src`, appending the octets to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let t = tables();
    // Bits not yet decoded, right-aligned in `acc`; `bits` of them.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let mut input = src.iter();
    loop {
        while bits <= 56 {
            match input.next() {
                Some(&b) => {
                    acc = (acc << 8) | u64::from(b);
                    bits += 8;
                }
                None => break,
            }
        }
        if bits == 0 {
            return Ok(());
        }
        // The next 8 bits, padded with ones past the end (as the string's own padding).
        let peek = if bits >= FAST_BITS {
            (acc >> (bits - FAST_BITS)) as usize & 0xff
        } else {
            (((acc << (FAST_BITS - bits)) | ((1 << (FAST_BITS - bits)) - 1)) & 0xff) as usize
        };
        let (sym, len) = t.fast[peek];
        if len != 0 && u32::from(len) <= bits {
            out.push(sym);
            bits -= u32::from(len);
            acc &= (1u64 << bits) - 1;
            continue;
        }
        // A longer code, or the padding.
        let mut found = None;
        for len in (FAST_BITS as usize + 1)..=MAX_LEN.min(bits as usize) {
            let code = (acc >> (bits - len as u32)) as u32;
            let off = code.wrapping_sub(t.first_code[len]);
            if off < u32::from(t.count[len]) {
                found = Some((
                    t.sorted[usize::from(t.first_index[len]) + off as usize],
                    len,
                ));
                break;
            }
        }
        match found {
            Some((EOS, _)) => return Err(Error::Eos),
            Some((sym, len)) => {
                out.push(sym as u8);
                bits -= len as u32;
                acc &= (1u64 << bits) - 1;
            }
            None => {
                // Only padding may be left: fewer than 8 bits, all ones (the EOS prefix).
                if bits < 8 && acc == (1u64 << bits) - 1 {
                    return Ok(());
                }
                return Err(Error::Padding);
            }
        }
    }
}

/// Encodes `src` (tests: the peer's side).
#[cfg(test)]
pub fn encode(src: &[u8]) -> Vec<u8> {
    let table: Vec<(u8, u32)> = codes().map(|(_, l, c)| (l, c)).collect();
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in src {
        let (len, code) = table[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            out.push((acc >> (bits - 8)) as u8);
            bits -= 8;
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(src: &[u8]) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        decode(src, &mut v).map(|()| v)
    }

    #[test]
    fn codes_match_rfc_examples() {
        let c: Vec<(u16, u8, u32)> = codes().collect();
        // A few codes as printed in RFC 7541 Appendix B.
        assert_eq!(c[usize::from(b'0')], (48, 5, 0x0));
        assert_eq!(c[usize::from(b'a')], (97, 5, 0x3));
        assert_eq!(c[usize::from(b' ')], (32, 6, 0x14));
        assert_eq!(c[0], (0, 13, 0x1ff8));
        assert_eq!(c[255], (255, 26, 0x3ffffee));
        assert_eq!(c[256], (256, 30, 0x3fff_ffff));
    }

    #[test]
    fn decodes_rfc_c4_strings() {
        // RFC 7541 C.4.1-C.4.3.
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(dec(&www).unwrap(), b"www.example.com");
        assert_eq!(
            dec(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]).unwrap(),
            b"no-cache"
        );
        let custom = [0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f];
        assert_eq!(dec(&custom).unwrap(), b"custom-key");
        assert_eq!(dec(&[]).unwrap(), b"");
    }

    #[test]
    fn round_trips_every_octet() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        assert_eq!(dec(&encode(&all)).unwrap(), all);
        for b in 0..=255u8 {
            assert_eq!(
                dec(&encode(&[b, b, b])).unwrap(),
                vec![b, b, b],
                "octet {b}"
            );
        }
        let path = b"/run/crust/crust.sock %2F unix:///x";
        assert_eq!(dec(&encode(path)).unwrap(), path);
    }

    #[test]
    fn rejects_bad_padding_and_eos() {
        // 'a' (00011) padded with zeros instead of ones.
        assert_eq!(dec(&[0b0001_1000]), Err(Error::Padding));
        // A whole byte of padding.
        let mut v = encode(b"a");
        v.push(0xff);
        assert_eq!(dec(&v), Err(Error::Padding));
        // EOS itself (30 ones) followed by padding.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(Error::Eos));
    }
}
