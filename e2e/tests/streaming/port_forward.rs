//! PortForward: parallel connections, and crustctl port-forward.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn port_forward_parallel_connections() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&pods::config()).await;
    let (pod, _id, _) = sleeper(&mut rt, &logs, "pf", &img, |c| {
        c.command = sh(
            "busybox mkdir /tmp/www && echo hello-http > /tmp/www/index.html && \
             busybox httpd -p 8081 -h /tmp/www && \
             exec busybox nc -ll -p 8080 -e /bin/cat",
        );
    })
    .await;
    let pf_url = |rt: &mut pods::Runtime, ports: Vec<i32>| {
        let pod = pod.clone();
        let mut rt = rt.clone();
        async move {
            rt.port_forward(kc::PortForwardRequest {
                pod_sandbox_id: pod,
                port: ports,
            })
            .await
            .expect("PortForward")
            .into_inner()
            .url
        }
    };
    // Wait for the server in the pod to listen.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (out, _) = pods::exec(
            &mut rt,
            &_id,
            "busybox netstat -ltn 2>/dev/null | busybox grep -cE ':808[01] ' || true",
        )
        .await;
        if out.trim() == "2" {
            break;
        }
        assert!(Instant::now() < deadline, "nc does not listen\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SPDY: one session, eight connections at once.
    let fwd = std::sync::Arc::new(
        PortForwarder::connect(&pf_url(&mut rt, vec![]).await)
            .await
            .expect("SPDY port-forward"),
    );
    let mut conns = Vec::new();
    for i in 0..8 {
        let fwd = fwd.clone();
        conns.push(tokio::spawn(async move {
            let (mut ours, theirs) = tokio::io::duplex(1 << 16);
            let f = tokio::spawn(async move { fwd.forward(8080, theirs).await });
            let payload: String = (0..500).map(|j| format!("conn {i} line {j}\n")).collect();
            ours.write_all(payload.as_bytes()).await.unwrap();
            // Read the echo before the half-close: after it the pod side only gets
            // crustd's 1 s grace, which a loaded machine's forked `cat` can miss.
            let mut back = vec![0u8; payload.len()];
            let got = ours.read_exact(&mut back).await;
            ours.shutdown().await.unwrap();
            let mut rest = Vec::new();
            ours.read_to_end(&mut rest).await.unwrap();
            f.await.unwrap().expect("forward");
            let back = match got {
                Ok(_) => {
                    String::from_utf8_lossy(&back).into_owned() + &String::from_utf8_lossy(&rest)
                }
                Err(_) => String::new(),
            };
            assert!(
                back == payload,
                "connection {i}: {} of {} bytes",
                back.len(),
                payload.len()
            );
        }));
    }
    for c in conns {
        tokio::time::timeout(Duration::from_secs(30), c)
            .await
            .expect("SPDY connections finish")
            .unwrap();
    }
    fwd.close().await;

    // WebSocket: one connection per session (no half-close in this protocol: the HTTP
    // server in the pod ends each), three sessions at once.
    let mut sessions = Vec::new();
    for i in 0..3 {
        let url = pf_url(&mut rt, vec![8081]).await;
        sessions.push(tokio::spawn(async move {
            let (mut ours, theirs) = tokio::io::duplex(1 << 16);
            let s = tokio::spawn(async move { forward_websocket(&url, vec![theirs]).await });
            ours.write_all(format!("GET /index.html?{i} HTTP/1.0\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let errs = s.await.unwrap().expect("websocket session");
            assert!(errs.iter().all(String::is_empty), "{errs:?}");
            let mut back = String::new();
            let _ = ours.read_to_string(&mut back).await;
            assert!(back.contains("hello-http"), "{back}");
        }));
    }
    // A port nobody listens on: the error reaches the client.
    let fwd = PortForwarder::connect(&pf_url(&mut rt, vec![]).await)
        .await
        .unwrap();
    let (_ours, theirs) = tokio::io::duplex(1024);
    let e = fwd.forward(8089, theirs).await.unwrap_err();
    assert!(e.to_string().contains("8089"), "{e}");
    fwd.close().await;

    // crustctl port-forward POD 0:8080, driven without a terminal.
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut child = crustctl(&d, &["port-forward", &pod, "0:8080"])
        .spawn()
        .expect("crustctl port-forward");
    let guard = ChildGuard(child.id());
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read crustctl output");
    let local: std::net::SocketAddr = line
        .strip_prefix("Forwarding from ")
        .and_then(|l| l.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected crustctl output {line:?}"));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(local).expect("connect forwarded port");
                let msg = format!("through crustctl {i}\n");
                c.write_all(msg.as_bytes()).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = String::new();
                c.read_to_string(&mut back).unwrap();
                assert_eq!(back, msg);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("forwarded connection");
    }
    drop(guard);
    let _ = child.wait();
}

/// Sends SIGINT to a child process on drop (Ctrl-C for crustctl port-forward).
struct ChildGuard(u32);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGINT,
        );
    }
}
