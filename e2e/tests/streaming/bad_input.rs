//! Bad input: reused and expired tokens, unknown and stopped containers, clients vanishing
//! mid-stream.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_vanishing_clients() {
    require_root!();
    let cfg = format!("{}[streaming]\ntoken_ttl_secs = 1\n", pods::config());
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&cfg).await;
    let (pod, id, pc) = sleeper(&mut rt, &logs, "bad", &img, |_| {}).await;

    // Unknown container, no streams, unknown pod.
    let e = exec_url(&mut rt, "nosuchcontainer", sh("true"), false, false, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = rt
        .exec(kc::ExecRequest {
            container_id: id.clone(),
            cmd: sh("true"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = rt
        .attach(kc::AttachRequest {
            container_id: "nosuchcontainer".into(),
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = rt
        .port_forward(kc::PortForwardRequest {
            pod_sandbox_id: "nosuchpod".into(),
            port: vec![80],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // A stopped container.
    let done = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("done", &img, &["/bin/true"]),
    )
    .await
    .unwrap();
    pods::wait_exited(&mut rt, &done).await;
    let e = exec_url(&mut rt, &done, sh("true"), false, false, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // The runtime's error, as ExecSync says it (one error-to-status mapping).
    assert!(e.message().ends_with(" is exited: cannot exec"), "{e:?}");

    // A token works once.
    let url = exec_url(&mut rt, &id, sh("echo once"), false, false, false)
        .await
        .unwrap();
    let run = |url: String| async move {
        let (o, oh) = sink();
        let r = remote_command(
            &url,
            &RemoteCommandOptions::new(Transport::Spdy, false),
            ClientStdio {
                stdout: Some(o),
                ..Default::default()
            },
        )
        .await;
        (r, oh.await.unwrap())
    };
    let (r, out) = run(url.clone()).await;
    assert_eq!(r.expect("first use").exit_code, 0);
    assert_eq!(out, "once\n");
    match run(url).await.0 {
        Err(ClientError::Upgrade { status, body }) => {
            assert_eq!(status.as_u16(), 404, "{body}")
        }
        other => panic!("reused token: {other:?}"),
    }
    // An expired token.
    let url = exec_url(&mut rt, &id, sh("echo late"), false, false, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    match run(url).await.0 {
        Err(ClientError::Upgrade { status, body }) => {
            assert_eq!(status.as_u16(), 404);
            assert!(
                body.contains("expired") || body.contains("unknown"),
                "{body}"
            );
        }
        other => panic!("expired token: {other:?}"),
    }

    // Clients that vanish mid-stream, over both transports: the process loses its stdin
    // and exits, its exec record and FIFOs go, crustd goes on.
    for t in TRANSPORTS {
        let url = exec_url(&mut rt, &id, vec!["/bin/cat".into()], false, true, false)
            .await
            .unwrap();
        let (url, cut) = relay(&url).await;
        let (mut input, client_in) = tokio::io::duplex(4096);
        let (out_w, mut out_r) = tokio::io::duplex(4096);
        let session = tokio::spawn(async move {
            remote_command(
                &url,
                &RemoteCommandOptions::new(t, false),
                ClientStdio {
                    stdin: Some(Box::new(client_in)),
                    stdout: Some(Box::new(out_w)),
                    ..Default::default()
                },
            )
            .await
        });
        input.write_all(b"hello\n").await.unwrap();
        let mut buf = [0u8; 6];
        tokio::time::timeout(Duration::from_secs(10), out_r.read_exact(&mut buf))
            .await
            .expect("echo")
            .unwrap();
        cut.abort();
        let _ = cut.await;
        let _ = session.await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (ps, _) = pods::exec(&mut rt, &id, "busybox ps -o comm").await;
            if !ps.lines().any(|l| l.trim() == "cat") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{t:?}: cat still runs:\n{ps}\n{}",
                d.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A tty session that vanishes: the exec's FIFOs are gone anyway.
    let url = exec_url(&mut rt, &id, sh("busybox sleep 2"), true, true, false)
        .await
        .unwrap();
    let (url, cut) = relay(&url).await;
    let (_input, client_in) = tokio::io::duplex(64);
    let (o, _oh) = sink();
    let session = tokio::spawn(async move {
        remote_command(
            &url,
            &RemoteCommandOptions::new(Transport::WebSocket, true),
            ClientStdio {
                stdin: Some(Box::new(client_in)),
                stdout: Some(o),
                ..Default::default()
            },
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cut.abort();
    let _ = cut.await;
    let _ = session.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_session_files(&d);

    // A malformed request to the streaming server itself.
    let url = exec_url(&mut rt, &id, sh("true"), false, false, false)
        .await
        .unwrap();
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /exec/not-a-token HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut resp = vec![0u8; 512];
    let n = tcp.read(&mut resp).await.unwrap();
    assert!(
        String::from_utf8_lossy(&resp[..n]).starts_with("HTTP/1.1 404"),
        "{}",
        String::from_utf8_lossy(&resp[..n])
    );

    // crustd is still fine.
    let (out, code) = pods::exec(&mut rt, &id, "echo alive").await;
    assert_eq!((out.as_str(), code), ("alive\n", 0), "{}", d.log());
    assert!(d.pid().is_some());
}
