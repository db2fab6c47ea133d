//! The adapter between a client written here (an HPACK encoder that indexes as grpc-go's
//! does, raw HTTP/2 frames) and a real h2 server, which decides what is acceptable: split
//! reads, CONTINUATION, padding, priority, the dynamic table across requests and evictions,
//! huge header blocks, DATA passing through unbuffered, malformed input left to h2.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

// ---- the client's side: HPACK encoding (RFC 7541), independent of the decoder ----

fn int(out: &mut Vec<u8>, flags: u8, bits: u8, v: usize) {
    let max = (1usize << bits) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut r = v - max;
    while r >= 128 {
        out.push(0x80 | (r % 128) as u8);
        r /= 128;
    }
    out.push(r as u8);
}

fn lit(out: &mut Vec<u8>, s: &[u8], huff: bool) {
    if huff {
        let h = huffman::encode(s);
        int(out, 0x80, 7, h.len());
        out.extend_from_slice(&h);
    } else {
        int(out, 0, 7, s.len());
        out.extend_from_slice(s);
    }
}

/// One field representation.
#[derive(Clone, Copy)]
enum F<'a> {
    Idx(usize),
    /// Literal with incremental indexing / without / never: name index (0: literal name),
    /// name, value, Huffman-coded.
    With(usize, &'a [u8], &'a [u8], bool),
    Without(usize, &'a [u8], &'a [u8], bool),
    Never(usize, &'a [u8], &'a [u8], bool),
    Size(usize),
}

fn block(fields: &[F]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        let (flags, bits, idx, name, value, huff) = match *f {
            F::Idx(i) => {
                int(&mut out, 0x80, 7, i);
                continue;
            }
            F::Size(s) => {
                int(&mut out, 0x20, 5, s);
                continue;
            }
            F::With(i, n, v, h) => (0x40, 6, i, n, v, h),
            F::Without(i, n, v, h) => (0x00, 4, i, n, v, h),
            F::Never(i, n, v, h) => (0x10, 4, i, n, v, h),
        };
        int(&mut out, flags, bits, idx);
        if idx == 0 {
            lit(&mut out, name, huff);
        }
        lit(&mut out, value, huff);
    }
    out
}

/// An encoder that indexes every field it has not seen (as grpc-go's does), with its own
/// model of the dynamic table (capacity 4096, RFC 7541 4.4 eviction).
#[derive(Default)]
struct Encoder {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
}

const STATIC: &[(&[u8], &[u8])] = &[
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
];

impl Encoder {
    fn encode(&mut self, headers: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(n, v) in headers {
            let all = STATIC
                .iter()
                .map(|&(a, b)| (a, b))
                .chain(self.table.iter().map(|(a, b)| (&a[..], &b[..])));
            let mut name_idx = 0;
            let mut full = 0;
            for (i, (a, b)) in all.enumerate() {
                let i = if i < STATIC.len() {
                    i + 1
                } else {
                    i - STATIC.len() + 62
                };
                if a == n && b == v {
                    full = i;
                    break;
                }
                if a == n && name_idx == 0 {
                    name_idx = i;
                }
            }
            if full != 0 {
                int(&mut out, 0x80, 7, full);
                continue;
            }
            int(&mut out, 0x40, 6, name_idx);
            if name_idx == 0 {
                lit(&mut out, n, true);
            }
            lit(&mut out, v, true);
            let size = n.len() + v.len() + 32;
            while self.size + size > 4096 {
                let Some((a, b)) = self.table.pop_back() else {
                    break;
                };
                self.size -= a.len() + b.len() + 32;
            }
            if size <= 4096 {
                self.size += size;
                self.table.push_front((n.to_vec(), v.to_vec()));
            }
        }
        out
    }
}

// ---- the client's side: frames ----

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Preface and an empty SETTINGS frame.
fn start() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(frame(4, 0, 0, &[]));
    v
}

/// A header block as HEADERS (END_STREAM) plus CONTINUATIONs, cut at `cuts`.
fn headers(stream: u32, block: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut parts = Vec::new();
    let mut rest = block;
    for &c in cuts {
        let (a, b) = rest.split_at(c.min(rest.len()));
        parts.push(a);
        rest = b;
    }
    parts.push(rest);
    let mut out = Vec::new();
    let last = parts.len() - 1;
    for (i, p) in parts.iter().enumerate() {
        let end = if i == last { 0x4 } else { 0 };
        if i == 0 {
            out.extend(frame(0x1, 0x1 | end, stream, p));
        } else {
            out.extend(frame(0x9, end, stream, p));
        }
    }
    out
}

fn grpc_request<'a>(path: &'a [u8], authority: &'a [u8]) -> Vec<(&'a [u8], &'a [u8])> {
    vec![
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path),
        (b":authority", authority),
        (b"content-type", b"application/grpc"),
        (b"user-agent", b"grpc-go/1.33.3"),
        (b"te", b"trailers"),
    ]
}

// ---- the server's side ----

/// A reader that returns at most the next of `sizes` octets per read (cycled), then
/// stays pending at the end (the client keeps the connection open).
struct Trickle<R> {
    inner: R,
    sizes: Vec<usize>,
    i: usize,
}

impl<R: AsyncRead + Unpin> AsyncRead for Trickle<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let n = me.sizes[me.i % me.sizes.len()].min(buf.remaining());
        me.i += 1;
        let mut tmp = vec![0; n];
        let mut small = ReadBuf::new(&mut tmp);
        let r = Pin::new(&mut me.inner).poll_read(cx, &mut small);
        buf.put_slice(small.filled());
        r
    }
}

impl<R: AsyncWrite + Unpin> AsyncWrite for Trickle<R> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, b)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What h2 made of one request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    authority: Option<String>,
    path: String,
    headers: Vec<(String, String)>,
}

/// How h2 answered a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Served,
    Reset(u32),
    GoAway(u32),
}

/// Serves `client` (raw bytes) with h2, through the adapter if `fix`, reading in `sizes`
/// pieces; returns what h2 saw and its answer per stream in `streams`.
async fn h2_run(
    client: &[u8],
    sizes: &[usize],
    fix: bool,
    streams: &[u32],
) -> (Vec<Seen>, HashMap<u32, Verdict>) {
    let (mut c, s) = tokio::io::duplex(1 << 24);
    let s = Trickle {
        inner: s,
        sizes: sizes.to_vec(),
        i: 0,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = if fix {
        tokio::spawn(serve(AuthorityFix::new(s), tx))
    } else {
        tokio::spawn(serve(s, tx))
    };
    c.write_all(client).await.expect("write");
    let mut verdicts = HashMap::new();
    let read = async {
        let mut head = [0u8; 9];
        while streams.iter().any(|s| !verdicts.contains_key(s)) {
            if c.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
            let mut p = vec![0; len];
            c.read_exact(&mut p).await.expect("payload");
            match head[3] {
                0x1 => {
                    verdicts.insert(stream, Verdict::Served);
                }
                0x3 => {
                    let code = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                    verdicts.insert(stream, Verdict::Reset(code));
                }
                0x7 => {
                    let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                    for s in streams {
                        verdicts.entry(*s).or_insert(Verdict::GoAway(code));
                    }
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("h2 answered every stream");
    server.abort();
    let mut seen = Vec::new();
    while let Ok(s) = rx.try_recv() {
        seen.push(s);
    }
    (seen, verdicts)
}

async fn serve<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
    tx: tokio::sync::mpsc::UnboundedSender<Seen>,
) {
    let Ok(mut conn) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let _ = tx.send(Seen {
            authority: req.uri().authority().map(|a| a.to_string()),
            path: req.uri().path().into(),
            headers,
        });
        let _ = respond.send_response(http::Response::new(()), true);
    }
}

/// All of `client` read through the adapter in `sizes` pieces (no h2).
async fn through(client: &[u8], sizes: &[usize]) -> (Vec<u8>, bool) {
    let (mut c, s) = tokio::io::duplex(1 << 24);
    c.write_all(client).await.expect("write");
    drop(c);
    let mut fix = AuthorityFix::new(Trickle {
        inner: s,
        sizes: sizes.to_vec(),
        i: 0,
    });
    let mut out = Vec::new();
    fix.read_to_end(&mut out).await.expect("read");
    (out, fix.scanner.is_opaque())
}

const SOCK: &[u8] = b"/run/crust/crust.sock";

/// Three grpc-go-like requests on one connection with `authority`.
fn three_requests(authority: &[u8]) -> Vec<u8> {
    let mut enc = Encoder::default();
    let mut c = start();
    for (i, path) in [b"/v1.R/Version", b"/v1.R/Version", b"/v1.R/Statuss"]
        .iter()
        .enumerate()
    {
        let b = enc.encode(&grpc_request(&path[..], authority));
        c.extend(headers(1 + 2 * i as u32, &b, &[]));
    }
    c
}

#[tokio::test]
async fn h2_alone_refuses_a_socket_path() {
    let (seen, v) = h2_run(&three_requests(SOCK), &[4096], false, &[1]).await;
    assert!(seen.is_empty());
    assert_eq!(v[&1], Verdict::Reset(1), "PROTOCOL_ERROR");
}

#[tokio::test]
async fn socket_path_then_indexed_references_are_served() {
    let (seen, v) = h2_run(&three_requests(SOCK), &[4096], true, &[1, 3, 5]).await;
    assert_eq!(
        v.values().filter(|&&v| v == Verdict::Served).count(),
        3,
        "{v:?}"
    );
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.authority.as_deref(), Some("-run-crust-crust.sock"));
        assert!(s
            .headers
            .contains(&("user-agent".into(), "grpc-go/1.33.3".into())));
    }
    assert_eq!(seen[2].path, "/v1.R/Statuss");
}

#[tokio::test]
async fn valid_authority_passes_byte_for_byte() {
    let client = three_requests(b"localhost");
    for sizes in [&[1][..], &[9], &[5, 13], &[4096]] {
        let (out, opaque) = through(&client, sizes).await;
        assert!(!opaque);
        assert_eq!(out, client, "read sizes {sizes:?}");
    }
    let (seen, _) = h2_run(&client, &[4096], true, &[1, 3, 5]).await;
    assert!(seen
        .iter()
        .all(|s| s.authority.as_deref() == Some("localhost")));
}

#[tokio::test]
async fn every_form_of_authority() {
    // (representation, authority h2 then sees)
    let cases: Vec<(Vec<F>, Option<&str>)> = vec![
        (
            vec![F::With(1, b"", b"tmp%2Fcrust.sock", true)],
            Some("tmp-2Fcrust.sock"),
        ),
        (
            vec![F::Without(1, b"", b"unix:///x/y.sock", false)],
            Some("localhost"),
        ),
        (
            vec![F::Never(0, b":authority", b"/x.sock", true)],
            Some("localhost"),
        ),
        (vec![F::Idx(1)], Some("localhost")),
        (vec![F::Without(1, b"", b"", false)], Some("localhost")),
        (vec![F::With(0, b":authority", b"", false)], None),
        (vec![F::With(1, b"", b"localhost", true)], Some("localhost")),
        (vec![F::With(1, b"", b"h:8080", false)], Some("h:8080")),
    ];
    let mut client = start();
    let mut streams = Vec::new();
    for (i, (auth, _)) in cases.iter().enumerate() {
        let mut fields = vec![F::Idx(3), F::Idx(6), F::Without(4, b"", b"/s/m", false)];
        fields.extend(auth.iter().copied());
        let stream = 1 + 2 * i as u32;
        client.extend(headers(stream, &block(&fields), &[]));
        streams.push(stream);
    }
    let (seen, v) = h2_run(&client, &[4096], true, &streams).await;
    assert!(v.values().all(|&v| v == Verdict::Served), "{v:?}");
    let got: Vec<Option<&str>> = seen.iter().map(|s| s.authority.as_deref()).collect();
    let want: Vec<Option<&str>> = cases.iter().map(|c| c.1).collect();
    assert_eq!(got, want);
    // The empty one was indexed under a stand-in name; h2 shows it as a plain header.
    assert!(seen[5].headers.iter().any(|(k, _)| k == "x-empty-au"));
}

#[tokio::test]
async fn continuation_padding_and_priority() {
    let mut enc = Encoder::default();
    let b = enc.encode(&grpc_request(b"/v1.R/Version", SOCK));
    // HEADERS with PADDED and PRIORITY carrying the first 5 octets, two CONTINUATIONs.
    let mut payload = vec![7u8];
    payload.extend_from_slice(&[0x80, 0, 0, 0, 42]);
    payload.extend_from_slice(&b[..5]);
    payload.extend_from_slice(&[0; 7]);
    let mut client = start();
    client.extend(frame(0x1, 0x1 | 0x8 | 0x20, 1, &payload));
    client.extend(frame(0x9, 0, 1, &b[5..9]));
    client.extend(frame(0x9, 0x4, 1, &b[9..]));
    for sizes in [&[1][..], &[3, 17], &[4096]] {
        let (seen, v) = h2_run(&client, sizes, true, &[1]).await;
        assert_eq!(v[&1], Verdict::Served, "sizes {sizes:?}");
        assert_eq!(seen[0].authority.as_deref(), Some("-run-crust-crust.sock"));
        assert_eq!(seen[0].path, "/v1.R/Version");
    }
    // Rewritten as one HEADERS frame: priority kept, padding dropped.
    let (out, _) = through(&client, &[4096]).await;
    let f = &out[start().len()..];
    assert_eq!((f[3], f[4]), (0x1, 0x1 | 0x4 | 0x20));
    assert_eq!(&f[9..14], &[0x80, 0, 0, 0, 42]);
    // A valid authority in the same frames passes as it came.
    let mut enc = Encoder::default();
    let ok = enc.encode(&grpc_request(b"/v1.R/Version", b"localhost"));
    let mut client = start();
    client.extend(frame(
        0x1,
        0x8 | 0x20,
        1,
        &[&[2u8, 0, 0, 0, 3, 9][..], &ok[..3], &[0, 0]].concat(),
    ));
    client.extend(frame(0x9, 0x4, 1, &ok[3..]));
    assert_eq!(through(&client, &[1]).await.0, client);
}

#[tokio::test]
async fn split_reads_of_every_size() {
    let client = three_requests(SOCK);
    for n in [1, 2, 3, 7, 8, 9, 10, 11, 24, 25, 33, 100] {
        let (seen, v) = h2_run(&client, &[n], true, &[1, 3, 5]).await;
        assert!(v.values().all(|&v| v == Verdict::Served), "size {n}: {v:?}");
        assert_eq!(seen.len(), 3, "size {n}");
    }
}

#[tokio::test]
async fn dynamic_table_stays_in_step_through_evictions() {
    // 300 requests, each adding a ~230-octet entry: the table (4096) turns over every ~15
    // requests, the socket-path :authority is evicted and added again many times.
    let mut enc = Encoder::default();
    let mut client = start();
    let mut streams = Vec::new();
    let values: Vec<String> = (0..300).map(|i| format!("{i:0>200}")).collect();
    for (i, v) in values.iter().enumerate() {
        let mut h = grpc_request(b"/v1.R/ListPodSandbox", SOCK);
        h.push((b"x-seq", v.as_bytes()));
        let stream = 1 + 2 * i as u32;
        client.extend(headers(stream, &enc.encode(&h), &[]));
        streams.push(stream);
    }
    let (seen, v) = h2_run(&client, &[1000, 7], true, &streams).await;
    assert!(v.values().all(|&v| v == Verdict::Served), "{v:?}");
    assert_eq!(seen.len(), 300);
    // Every block decoded (no index ever out of step).
    assert!(!through(&client, &[1000, 7]).await.1);
    for (s, want) in seen.iter().zip(&values) {
        assert_eq!(s.authority.as_deref(), Some("-run-crust-crust.sock"));
        let seq = s.headers.iter().find(|(k, _)| k == "x-seq").map(|(_, v)| v);
        assert_eq!(seq, Some(want));
    }
}

#[tokio::test]
async fn huge_header_block_is_reframed() {
    let big = "v".repeat(40_000);
    let mut h = grpc_request(b"/v1.R/Version", SOCK);
    h.push((b"x-big", big.as_bytes()));
    let b = block(
        &h.iter()
            .map(|&(n, v)| F::Without(0, n, v, false))
            .collect::<Vec<_>>(),
    );
    let mut client = start();
    client.extend(headers(1, &b, &[16_000, 16_000]));
    let (seen, v) = h2_run(&client, &[4096], true, &[1]).await;
    assert_eq!(v[&1], Verdict::Served);
    assert_eq!(seen[0].authority.as_deref(), Some("localhost"));
    assert!(seen[0]
        .headers
        .iter()
        .any(|(k, v)| k == "x-big" && *v == big));
    // Every frame written is within 16384 octets.
    let (out, _) = through(&client, &[4096]).await;
    let mut f = &out[start().len()..];
    let mut frames = 0;
    while !f.is_empty() {
        let len = usize::from(f[0]) << 16 | usize::from(f[1]) << 8 | usize::from(f[2]);
        assert!(len <= frames::MAX_FRAME);
        f = &f[9 + len..];
        frames += 1;
    }
    assert_eq!(frames, 3);
}

#[tokio::test]
async fn data_passes_without_waiting_for_the_whole_payload() {
    let mut enc = Encoder::default();
    let mut client = start();
    let b = enc.encode(&grpc_request(b"/i/Import", b"localhost"));
    client.extend(headers(1, &b, &[]));
    // A DATA frame announcing 100000 octets, of which 1000 have arrived.
    let mut d = frame(0x0, 0, 1, &[]);
    d[..3].copy_from_slice(&100_000u32.to_be_bytes()[1..]);
    client.extend(&d);
    client.extend(vec![0xab; 1000]);
    // The client holds the connection open: nothing more arrives.
    let (mut c, s) = tokio::io::duplex(1 << 20);
    c.write_all(&client).await.expect("write");
    let mut fix = AuthorityFix::new(s);
    let mut got = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    while got.len() < client.len() {
        let n = tokio::time::timeout(Duration::from_secs(5), fix.read(&mut buf))
            .await
            .expect("read returned without the rest of the DATA payload")
            .expect("read");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, client);
    assert!(fix.stash.is_empty());
}

#[tokio::test]
async fn malformed_input_reaches_h2_as_sent() {
    // A CONTINUATION with no HEADERS before it.
    let mut client = start();
    client.extend(frame(0x9, 0x4, 1, &[0x82]));
    let (out, opaque) = through(&client, &[5]).await;
    assert_eq!((out, opaque), (client.clone(), true));
    // An index no table has: h2 answers as it would without the adapter.
    let mut client = start();
    client.extend(headers(
        1,
        &block(&[F::Idx(3), F::Idx(6), F::Idx(200)]),
        &[],
    ));
    let (out, opaque) = through(&client, &[4096]).await;
    assert_eq!((&out, opaque), (&client, true));
    let with = h2_run(&client, &[4096], true, &[1]).await.1;
    let without = h2_run(&client, &[4096], false, &[1]).await.1;
    assert_eq!(with, without);
    assert!(matches!(with[&1], Verdict::GoAway(_)), "{with:?}");
}

#[tokio::test]
async fn h2_client_streams_through_unchanged() {
    let (c, s) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        let mut conn = h2::server::handshake(AuthorityFix::new(s))
            .await
            .expect("handshake");
        while let Some(Ok((req, mut respond))) = conn.accept().await {
            tokio::spawn(async move {
                let mut body = req.into_body();
                let mut total = 0usize;
                while let Some(Ok(chunk)) = body.data().await {
                    total += chunk.len();
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                let mut tx = respond
                    .send_response(http::Response::new(()), false)
                    .expect("respond");
                let _ = tx.send_data(bytes::Bytes::from(total.to_string()), true);
            });
        }
    });
    let (client, conn) = h2::client::handshake(c).await.expect("client handshake");
    tokio::spawn(conn);
    let mut client = client.ready().await.expect("ready");
    for round in 0..3 {
        let req = http::Request::post("http://localhost/crust.v1.Images/Import")
            .body(())
            .expect("request");
        let (resp, mut tx) = client.send_request(req, false).expect("send");
        let chunk = bytes::Bytes::from(vec![round as u8; 256 * 1024]);
        for _ in 0..4 {
            tx.reserve_capacity(chunk.len());
            tx.send_data(chunk.clone(), false).expect("data");
        }
        tx.send_data(bytes::Bytes::new(), true).expect("end");
        let mut body = resp.await.expect("response").into_body();
        let mut got = Vec::new();
        while let Some(Ok(b)) = body.data().await {
            got.extend_from_slice(&b);
        }
        assert_eq!(got, (4 * 256 * 1024).to_string().as_bytes());
    }
    server.abort();
}

#[tokio::test]
async fn table_size_updates_are_followed() {
    let base = [F::Idx(3), F::Idx(6), F::Idx(4)];
    let mut client = start();
    // Size updates open a block (RFC 7541 4.2).
    let reqs: [(Vec<F>, Vec<F>); 3] = [
        (vec![], vec![F::With(1, b"", SOCK, true)]),
        // Emptied and regrown: the entry is gone, added again.
        (
            vec![F::Size(0), F::Size(4096)],
            vec![F::With(1, b"", b"/other.sock", false)],
        ),
        (vec![], vec![F::Idx(62)]),
    ];
    for (i, (pre, r)) in reqs.iter().enumerate() {
        let fields: Vec<F> = pre.iter().chain(&base).chain(r).copied().collect();
        client.extend(headers(1 + 2 * i as u32, &block(&fields), &[]));
    }
    let (seen, v) = h2_run(&client, &[4096], true, &[1, 3, 5]).await;
    assert!(v.values().all(|&v| v == Verdict::Served), "{v:?}");
    let got: Vec<_> = seen
        .iter()
        .map(|s| s.authority.clone().unwrap_or_default())
        .collect();
    assert_eq!(got, ["-run-crust-crust.sock", "-other.sock", "-other.sock"]);
}
