//! Unit tests of the frame codec: hand-computed byte vectors, round trips, malformed input
//! and a fuzz-style run over random and mutated bytes.

use super::*;
use crate::spdy::dictionary::SPDY3_DICTIONARY;

fn encode(frame: &Frame) -> Vec<u8> {
    let mut c = FrameCodec::new().unwrap();
    let mut b = BytesMut::new();
    c.encode(frame, &mut b).unwrap();
    b.to_vec()
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut c = FrameCodec::new().unwrap();
    let mut b = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = c.decode(&mut b)? {
        out.push(f);
    }
    Ok(out)
}

#[test]
fn fixed_frames_match_hand_computed_bytes() {
    assert_eq!(
        encode(&Frame::RstStream {
            stream_id: 5,
            status: rst::CANCEL
        }),
        [0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 5, 0, 0, 0, 5]
    );
    assert_eq!(
        encode(&Frame::Ping { id: 2 }),
        [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 2]
    );
    assert_eq!(
        encode(&Frame::GoAway {
            last_good_stream_id: 7,
            status: goaway::OK
        }),
        [0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 7, 0, 0, 0, 0]
    );
    assert_eq!(
        encode(&Frame::WindowUpdate {
            stream_id: 1,
            delta: 0x10000
        }),
        [0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 1, 0, 1, 0, 0]
    );
    assert_eq!(
        encode(&Frame::Settings {
            flags: 0,
            entries: vec![Setting {
                flags: 1,
                id: SETTINGS_INITIAL_WINDOW_SIZE,
                value: 65536
            }]
        }),
        [0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0c, 0, 0, 0, 1, 0x01, 0, 0, 7, 0, 1, 0, 0]
    );
    assert_eq!(
        encode(&Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"hi")
        }),
        [0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x02, b'h', b'i']
    );
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A zlib stream built by hand (RFC 1950/1951): header with FDICT, the dictionary id, and
/// one non-final stored block holding `raw` — what any SPDY peer may legally send.
fn hand_zlib_stored(raw: &[u8]) -> Vec<u8> {
    let mut z = vec![0x78, 0x20]; // CM=8 CINFO=7, FDICT; 0x7820 % 31 == 0
    z.extend_from_slice(&adler32(&SPDY3_DICTIONARY).to_be_bytes());
    z.push(0x00); // BFINAL=0, BTYPE=00 (stored), padded to the byte boundary
    let len = raw.len() as u16;
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(!len).to_le_bytes());
    z.extend_from_slice(raw);
    z
}

#[test]
fn syn_stream_with_hand_built_header_block_decodes() {
    // Header block for {streamtype: error} per SPDY/3 §2.6.10.
    let mut block = vec![0, 0, 0, 1, 0, 0, 0, 10];
    block.extend_from_slice(b"streamtype");
    block.extend_from_slice(&[0, 0, 0, 5]);
    block.extend_from_slice(b"error");
    let z = hand_zlib_stored(&block);
    let mut wire = vec![0x80, 0x03, 0x00, 0x01, FLAG_FIN];
    let len = (10 + z.len()) as u32;
    wire.extend_from_slice(&len.to_be_bytes()[1..]);
    wire.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0]); // id 1, assoc 0, pri 3
    wire.extend_from_slice(&z);
    let frames = decode_all(&wire).unwrap();
    assert_eq!(
        frames,
        vec![Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 3,
            slot: 0,
            flags: FLAG_FIN,
            headers: Headers::new().with("streamtype", "error"),
        }]
    );
}

#[test]
fn encoded_syn_stream_has_spec_layout() {
    let h = Headers::new().with("streamType", "stdin");
    let wire = encode(&Frame::SynStream {
        stream_id: 3,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: h.clone(),
    });
    assert_eq!(&wire[..5], &[0x80, 0x03, 0x00, 0x01, 0x00]);
    let len = u32::from_be_bytes([0, wire[5], wire[6], wire[7]]) as usize;
    assert_eq!(len, wire.len() - 8);
    assert_eq!(&wire[8..18], &[0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
    // The block must inflate, with the SPDY dictionary, to the plain layout.
    let mut d = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(1024);
    let err = d
        .decompress_vec(&wire[18..], &mut out, flate2::FlushDecompress::Sync)
        .unwrap_err();
    assert_eq!(err.needs_dictionary(), Some(adler32(&SPDY3_DICTIONARY)));
    d.set_dictionary(&SPDY3_DICTIONARY).unwrap();
    let consumed = d.total_in() as usize;
    d.decompress_vec(
        &wire[18 + consumed..],
        &mut out,
        flate2::FlushDecompress::Sync,
    )
    .unwrap();
    assert_eq!(out, h.to_block());
}

fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 7,
            slot: 0,
            flags: FLAG_UNIDIRECTIONAL,
            headers: Headers::new()
                .with("streamtype", "data")
                .with("port", "8080")
                .with("requestid", "0"),
        },
        Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: Headers::new(),
        },
        Frame::Headers {
            stream_id: 1,
            flags: FLAG_FIN,
            headers: Headers::new().with("x", "y"),
        },
        Frame::Data {
            stream_id: 1,
            flags: 0,
            data: Bytes::from(vec![7u8; 70_000]),
        },
        Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::new(),
        },
        Frame::RstStream {
            stream_id: 9,
            status: rst::REFUSED_STREAM,
        },
        Frame::Settings {
            flags: FLAG_SETTINGS_CLEAR,
            entries: vec![
                Setting {
                    flags: 0,
                    id: 4,
                    value: 100,
                },
                Setting {
                    flags: 0,
                    id: SETTINGS_INITIAL_WINDOW_SIZE,
                    value: 1 << 20,
                },
            ],
        },
        Frame::Ping { id: 1 },
        Frame::GoAway {
            last_good_stream_id: 1,
            status: goaway::PROTOCOL_ERROR,
        },
        Frame::WindowUpdate {
            stream_id: 0,
            delta: 4096,
        },
    ]
}

#[test]
fn every_frame_type_round_trips_through_one_codec_pair() {
    let frames = sample_frames();
    let mut tx = FrameCodec::new().unwrap();
    let mut wire = BytesMut::new();
    for f in &frames {
        tx.encode(f, &mut wire).unwrap();
    }
    // Feed the bytes in small pieces to exercise partial frames.
    let mut rx = FrameCodec::new().unwrap();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for chunk in wire.chunks(333) {
        buf.extend_from_slice(chunk);
        while let Some(f) = rx.decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
}

#[test]
fn unknown_control_frames_are_skipped() {
    let mut wire = vec![0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb];
    wire.extend(encode(&Frame::Ping { id: 3 }));
    assert_eq!(decode_all(&wire).unwrap(), vec![Frame::Ping { id: 3 }]);
}

#[test]
fn malformed_frames_are_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            vec![0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1],
            "version",
        ),
        (vec![0x80, 0x03, 0x00, 0x06, 0, 0, 0, 3, 0, 0, 1], "length"),
        (
            vec![0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1],
            "stream id 0",
        ),
        (
            vec![0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
            "status 0",
        ),
        (
            vec![0x80, 0x03, 0x00, 0x09, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
            "delta 0",
        ),
        (
            vec![0x80, 0x03, 0x00, 0x04, 0, 0, 0, 4, 0, 0, 0, 1],
            "settings count",
        ),
        (vec![0x00, 0x00, 0x00, 0x00, 0, 0, 0, 1, 9], "data stream 0"),
        (
            vec![0x80, 0x03, 0x00, 0x01, 0, 0, 0, 4, 0, 0, 0, 1],
            "short syn",
        ),
        (
            vec![0x80, 0x03, 0x00, 0x02, 0, 0, 0, 8, 0, 0, 0, 1, 1, 2, 3, 4],
            "bad zlib",
        ),
    ];
    for (bytes, what) in cases {
        assert!(decode_all(&bytes).is_err(), "{what} accepted");
    }
    // Incomplete input is not an error, just "need more".
    assert!(decode_all(&[0x80, 0x03, 0x00]).unwrap().is_empty());
    // Oversized payloads are refused on encode.
    let mut c = FrameCodec::new().unwrap();
    let big = Frame::Data {
        stream_id: 1,
        flags: 0,
        data: Bytes::from(vec![0u8; MAX_FRAME_PAYLOAD + 1]),
    };
    assert!(matches!(
        c.encode(&big, &mut BytesMut::new()),
        Err(FrameError::TooLarge(_))
    ));
}

/// xorshift64*: a tiny deterministic generator so the fuzz run is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn fuzz_random_and_mutated_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Pure random input, biased towards plausible control headers.
    for _ in 0..3000 {
        let len = (rng.next() % 200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 8 && rng.next().is_multiple_of(2) {
            bytes[0] = 0x80;
            bytes[1] = 0x03;
            bytes[2] = 0;
            bytes[3] = (rng.next() % 11) as u8;
            let plen = (len - 8) as u32;
            bytes[5..8].copy_from_slice(&plen.to_be_bytes()[1..]);
        }
        let _ = decode_all(&bytes);
    }
    // Valid streams with bit flips.
    let mut tx = FrameCodec::new().unwrap();
    let mut wire = BytesMut::new();
    for f in sample_frames()
        .iter()
        .filter(|f| !matches!(f, Frame::Data { .. }))
    {
        tx.encode(f, &mut wire).unwrap();
    }
    for _ in 0..3000 {
        let mut bytes = wire.to_vec();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % bytes.len();
            bytes[i] ^= 1 << (rng.next() % 8);
        }
        let _ = decode_all(&bytes);
    }
}
