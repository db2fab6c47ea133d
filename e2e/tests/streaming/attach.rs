//! Attach: output, input and the container log kept.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn attach_sees_output_sends_input_and_keeps_the_log() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&pods::config()).await;
    let (_pod, id, _) = sleeper(&mut rt, &logs, "attach", &img, |c| {
        c.command = sh(
            "echo started; while read l; do [ \"$l\" = quit ] && exit 0; \
                        echo got:$l; echo err:$l >&2; done",
        );
        c.stdin = true;
    })
    .await;
    for (i, t) in TRANSPORTS.into_iter().enumerate() {
        let url = rt
            .attach(kc::AttachRequest {
                container_id: id.clone(),
                stdin: true,
                tty: false,
                stdout: true,
                stderr: true,
            })
            .await
            .expect("Attach")
            .into_inner()
            .url;
        let (url, cut) = relay(&url).await;
        let (mut input, client_in) = tokio::io::duplex(4096);
        let (out_w, mut out_r) = tokio::io::duplex(4096);
        let (e, eh) = sink();
        let session = tokio::spawn(async move {
            remote_command(
                &url,
                &RemoteCommandOptions::new(t, false),
                ClientStdio {
                    stdin: Some(Box::new(client_in)),
                    stdout: Some(Box::new(out_w)),
                    stderr: Some(e),
                    ..Default::default()
                },
            )
            .await
        });
        let word = format!("ping{i}");
        let line = format!("{word}\n");
        let poke = Some((&mut input, line.as_bytes()));
        read_until(&mut out_r, poke, &format!("got:{word}"), || {
            format!("{t:?}\n{}", d.log())
        })
        .await;
        if t == Transport::Spdy {
            // Detach by vanishing: the container goes on.
            cut.abort();
            let _ = cut.await;
            let _ = session.await;
            let _ = eh.await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let s = pods::status(&mut rt, &id).await;
            assert_eq!(s.state, kc::ContainerState::ContainerRunning as i32);
        } else {
            // Ask the container to exit: the attach ends with it.
            input.write_all(b"quit\n").await.unwrap();
            let outcome = tokio::time::timeout(Duration::from_secs(20), session)
                .await
                .expect("attach ends when the container exits")
                .unwrap()
                .unwrap_or_else(|e| panic!("{t:?}: {e}\n{}", d.log()));
            assert_eq!(outcome.exit_code, 0);
            assert!(eh.await.unwrap().contains(&format!("err:{word}")));
        }
    }
    // A tty container: the attach's terminal size reaches it.
    let (_pod2, tty_id, _) = sleeper(&mut rt, &logs, "attach-tty", &img, |c| {
        c.command = sh("while true; do echo size=$(busybox stty size); busybox sleep 0.1; done");
        c.tty = true;
        c.stdin = true;
    })
    .await;
    let url = rt
        .attach(kc::AttachRequest {
            container_id: tty_id.clone(),
            stdin: true,
            tty: true,
            stdout: true,
            stderr: false,
        })
        .await
        .expect("Attach tty")
        .into_inner()
        .url;
    let (url, cut) = relay(&url).await;
    let (_input, client_in) = tokio::io::duplex(64);
    let (out_w, mut out_r) = tokio::io::duplex(1 << 16);
    let (tx, rx) = mpsc::channel(4);
    tx.send(TerminalSize {
        width: 120,
        height: 44,
    })
    .await
    .unwrap();
    let session = tokio::spawn(async move {
        remote_command(
            &url,
            &RemoteCommandOptions::new(Transport::Spdy, true),
            ClientStdio {
                stdin: Some(Box::new(client_in)),
                stdout: Some(Box::new(out_w)),
                resize: Some(rx),
                ..Default::default()
            },
        )
        .await
    });
    read_until(&mut out_r, None, "size=44 120", || d.log()).await;
    drop(tx);
    cut.abort();
    let _ = cut.await;
    let _ = session.await;

    let s = pods::wait_exited(&mut rt, &id).await;
    assert_eq!(s.exit_code, 0);
    let log = std::fs::read_to_string(logs.path().join("attach.log")).unwrap();
    for line in [
        " stdout F started",
        " stdout F got:ping0",
        " stderr F err:ping0",
        " stdout F got:ping1",
    ] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
    assert!(log.lines().all(|l| l.split(' ').count() >= 4), "{log}");
    assert_no_session_files(&d);
}
