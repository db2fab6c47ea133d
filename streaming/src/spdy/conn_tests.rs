//! Tests of the connection multiplexer, over in-memory pipes, against itself and against a
//! raw frame-level peer.

use super::*;
use crate::spdy::frame::FrameCodec;
use tokio::io::DuplexStream;

fn pair() -> ((Connection, Incoming), (Connection, Incoming)) {
    let (a, b) = tokio::io::duplex(1 << 16);
    (
        Connection::new(a, Role::Client).unwrap(),
        Connection::new(b, Role::Server).unwrap(),
    )
}

/// A peer speaking raw frames, to check what goes on the wire.
struct RawPeer {
    io: DuplexStream,
    codec: FrameCodec,
    buf: BytesMut,
}

impl RawPeer {
    fn new(io: DuplexStream) -> Self {
        Self {
            io,
            codec: FrameCodec::new().unwrap(),
            buf: BytesMut::new(),
        }
    }
    async fn send(&mut self, f: Frame) {
        let mut b = BytesMut::new();
        self.codec.encode(&f, &mut b).unwrap();
        self.io.write_all(&b).await.unwrap();
    }
    async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }
}

#[tokio::test]
async fn streams_carry_data_both_ways_with_fin() {
    let ((client, _ci), (_server, mut si)) = pair();
    let server_task = tokio::spawn(async move {
        let inc = si.next().await.unwrap();
        assert_eq!(inc.headers().get("streamtype"), Some("stdin"));
        assert_eq!(inc.id(), 1);
        let mut s = inc.accept().await.unwrap();
        let got = s.reader.read_to_end(1 << 20).await.unwrap();
        s.writer.write(&got).await.unwrap();
        s.writer.write(b"!").await.unwrap();
        s.writer.finish().await.unwrap();
    });
    let mut s = client
        .open_stream(Headers::new().with("streamType", "stdin"))
        .await
        .unwrap();
    s.writer.write(b"hello").await.unwrap();
    s.writer.finish().await.unwrap();
    assert!(matches!(
        s.writer.write(b"late").await,
        Err(ConnectionError::WriteAfterFinish { .. })
    ));
    assert_eq!(s.reader.read_to_end(1 << 20).await.unwrap(), b"hello!");
    server_task.await.unwrap();
}

#[tokio::test]
async fn large_concurrent_transfers_do_not_stall() {
    let ((client, _ci), (_server, mut si)) = pair();
    const N: usize = 3 << 20;
    tokio::spawn(async move {
        while let Some(inc) = si.next().await {
            tokio::spawn(async move {
                let s = inc.accept().await.unwrap();
                let (mut r, mut w) = (s.reader, s.writer);
                // Echo while reading: both directions busy at once.
                while let Some(b) = r.read().await.unwrap() {
                    w.write(&b).await.unwrap();
                }
                w.finish().await.unwrap();
            });
        }
    });
    let mut tasks = Vec::new();
    for i in 0..3u8 {
        let s = client
            .open_stream(Headers::new().with("n", i.to_string()))
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = (s.reader, s.writer);
            let writer = tokio::spawn(async move {
                let data = vec![i; N];
                w.write(&data).await.unwrap();
                w.finish().await.unwrap();
            });
            let got = r.read_to_end(usize::MAX).await.unwrap();
            writer.await.unwrap();
            assert_eq!(got.len(), N);
            assert!(got.iter().all(|b| *b == i));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn consumer_sends_window_updates_and_answers_pings() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (_server, mut si) = Connection::new(b, Role::Server).unwrap();
    let mut peer = RawPeer::new(a);
    peer.send(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: Headers::new().with("streamtype", "stdin"),
    })
    .await;
    let inc = si.next().await.unwrap();
    let mut s = inc.accept().await.unwrap();
    assert!(matches!(
        peer.recv().await,
        Some(Frame::SynReply { stream_id: 1, .. })
    ));
    peer.send(Frame::Ping { id: 1 }).await;
    assert_eq!(peer.recv().await, Some(Frame::Ping { id: 1 }));
    peer.send(Frame::Data {
        stream_id: 1,
        flags: 0,
        data: Bytes::from(vec![0u8; 40_000]),
    })
    .await;
    assert_eq!(s.reader.read().await.unwrap().unwrap().len(), 40_000);
    let mut updates = Vec::new();
    for _ in 0..2 {
        updates.push(peer.recv().await.unwrap());
    }
    assert!(updates.contains(&Frame::WindowUpdate {
        stream_id: 1,
        delta: 40_000
    }));
    assert!(updates.contains(&Frame::WindowUpdate {
        stream_id: 0,
        delta: 40_000
    }));
}

#[tokio::test]
async fn bad_stream_ids_are_reset_and_rejects_reach_the_opener() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (_server, mut si) = Connection::new(b, Role::Server).unwrap();
    let mut peer = RawPeer::new(a);
    let syn = |id| Frame::SynStream {
        stream_id: id,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: Headers::new(),
    };
    // Even id from a client: protocol error.
    peer.send(syn(2)).await;
    assert_eq!(
        peer.recv().await,
        Some(Frame::RstStream {
            stream_id: 2,
            status: rst::PROTOCOL_ERROR
        })
    );
    peer.send(syn(5)).await;
    let inc = si.next().await.unwrap();
    inc.reject().await.unwrap();
    assert_eq!(
        peer.recv().await,
        Some(Frame::RstStream {
            stream_id: 5,
            status: rst::REFUSED_STREAM
        })
    );
    // Reused (non-increasing) id.
    peer.send(syn(3)).await;
    assert_eq!(
        peer.recv().await,
        Some(Frame::RstStream {
            stream_id: 3,
            status: rst::PROTOCOL_ERROR
        })
    );

    let ((client, _ci), (_s2, mut si2)) = pair();
    tokio::spawn(async move {
        let inc = si2.next().await.unwrap();
        inc.reject().await.unwrap();
        // Keep the connection open while the client looks at the reset.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    assert!(matches!(
        client.open_stream(Headers::new()).await,
        Err(ConnectionError::Reset { status: 3, .. })
    ));
}

#[tokio::test]
async fn garbage_ends_the_connection_with_goaway_and_streams_see_it() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (server, mut si) = Connection::new(b, Role::Server).unwrap();
    let mut peer = RawPeer::new(a);
    peer.send(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: Headers::new(),
    })
    .await;
    let mut s = si.next().await.unwrap().accept().await.unwrap();
    assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
    peer.io
        .write_all(&[0x80, 0x07, 0x00, 0x01, 0, 0, 0, 0])
        .await
        .unwrap();
    assert!(matches!(
        peer.recv().await,
        Some(Frame::GoAway {
            status: goaway::PROTOCOL_ERROR,
            ..
        })
    ));
    assert!(matches!(
        s.reader.read().await,
        Err(ConnectionError::Lost(_))
    ));
    server.closed().await;
    assert!(matches!(
        server.open_stream(Headers::new()).await,
        Err(ConnectionError::Lost(_))
    ));
}

#[tokio::test]
async fn vanished_peer_and_close_are_clean() {
    let ((client, _ci), (server, mut si)) = pair();
    let open = tokio::spawn(async move { client.open_stream(Headers::new()).await });
    let mut s = si.next().await.unwrap().accept().await.unwrap();
    let mut cs = open.await.unwrap().unwrap();
    cs.writer.write(b"x").await.unwrap();
    assert_eq!(&s.reader.read().await.unwrap().unwrap()[..], b"x");
    drop(cs);
    // Dropping the writer half-closes the stream.
    assert_eq!(s.reader.read().await.unwrap(), None);
    server.close().await;
    server.close().await;
    assert!(s.writer.write(b"y").await.is_err());
}

/// Openers racing on a multi-threaded runtime: every SYN_STREAM must reach the peer in id
/// order, or the peer resets the lower id with PROTOCOL_ERROR (CI saw this through
/// port-forward's eight parallel connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_openers_send_ids_in_order() {
    let ((client, _ci), (_server, mut si)) = pair();
    let server = tokio::spawn(async move {
        let mut n = 0;
        while let Some(inc) = si.next().await {
            let s = inc.accept().await.unwrap();
            drop(s);
            n += 1;
            if n == 400 {
                break;
            }
        }
    });
    let mut opens = Vec::new();
    for _ in 0..400 {
        let c = client.clone();
        opens.push(tokio::spawn(async move {
            c.open_stream(Headers::new().with("streamType", "data"))
                .await
                .map(|_| ())
        }));
    }
    for o in opens {
        o.await.unwrap().expect("every stream opens");
    }
    server.await.unwrap();
}
