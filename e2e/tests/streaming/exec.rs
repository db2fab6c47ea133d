//! Exec: exit codes, tty, stdin, over both transports and through crustctl.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn exec_streams_exit_codes_tty_and_stdin() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&pods::config()).await;
    let (_pod, id, _) = sleeper(&mut rt, &logs, "exec", &img, |_| {}).await;
    for t in TRANSPORTS {
        // Two output streams and an exit code.
        let url = exec_url(
            &mut rt,
            &id,
            sh("echo out; echo err >&2; exit 3"),
            false,
            false,
            true,
        )
        .await
        .expect("Exec");
        let ((o, oh), (e, eh)) = (sink(), sink());
        let outcome = remote_command(
            &url,
            &RemoteCommandOptions::new(t, false),
            ClientStdio {
                stdout: Some(o),
                stderr: Some(e),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{t:?}: {e}\n{}", d.log()));
        assert_eq!(outcome.exit_code, 3, "{t:?}");
        assert_eq!(oh.await.unwrap(), "out\n", "{t:?}");
        assert_eq!(eh.await.unwrap(), "err\n", "{t:?}");

        // A terminal whose size the client sets.
        let url = exec_url(
            &mut rt,
            &id,
            sh("for i in $(busybox seq 100); do s=$(busybox stty size); \
                [ \"$s\" = '33 101' ] && break; busybox sleep 0.05; done; echo size=$s"),
            true,
            false,
            false,
        )
        .await
        .expect("Exec tty");
        let (o, oh) = sink();
        let (tx, rx) = mpsc::channel(4);
        tx.send(TerminalSize {
            width: 101,
            height: 33,
        })
        .await
        .unwrap();
        let outcome = remote_command(
            &url,
            &RemoteCommandOptions::new(t, true),
            ClientStdio {
                stdout: Some(o),
                resize: Some(rx),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{t:?} tty: {e}\n{}", d.log()));
        drop(tx);
        assert_eq!(outcome.exit_code, 0);
        let out = oh.await.unwrap();
        assert!(out.contains("size=33 101"), "{t:?}: {out:?}");

        // stdin round trip, ended by EOF.
        let url = exec_url(&mut rt, &id, vec!["/bin/cat".into()], false, true, false)
            .await
            .expect("Exec stdin");
        let (o, oh) = sink();
        let payload: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let outcome = remote_command(
            &url,
            &RemoteCommandOptions::new(t, false),
            ClientStdio {
                stdin: Some(Box::new(std::io::Cursor::new(payload.clone().into_bytes()))),
                stdout: Some(o),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{t:?} stdin: {e}\n{}", d.log()));
        assert_eq!(outcome.exit_code, 0);
        let back = oh.await.unwrap();
        assert!(
            back == payload,
            "{t:?}: cat returned {} of {} bytes",
            back.len(),
            payload.len()
        );
    }

    // crustctl: plain exec is ExecSync, -i streams stdin (SPDY and WebSocket).
    let (out, _, code) =
        crustctl_with_input(&d, &["exec", &id, "sh", "-c", "echo sync; exit 5"], b"");
    assert_eq!((out.as_str(), code), ("sync\n", 5));
    for transport in ["spdy", "websocket"] {
        let (out, err, code) = crustctl_with_input(
            &d,
            &[
                "exec",
                "-i",
                "--transport",
                transport,
                &id,
                "sh",
                "-c",
                "cat; echo to-err >&2; exit 4",
            ],
            b"piped through crustctl\n",
        );
        assert_eq!(out, "piped through crustctl\n", "{transport}: {err}");
        assert_eq!(err, "to-err\n", "{transport}");
        assert_eq!(code, 4, "{transport}");
    }
    // crustctl exec -it on a pseudo-terminal (util-linux `script`): raw mode, the local
    // window size reaches the container, the exit code comes back.
    let ctl = crust_e2e::workspace_bin("crust-ctl", "crustctl");
    let inner = format!(
        "stty cols 91 rows 27; {} --runtime-endpoint unix://{} --config /nonexistent exec -it {id} \
         sh -c 'for i in $(busybox seq 50); do s=$(busybox stty size); \
         [ \"$s\" = \"27 91\" ] && break; busybox sleep 0.05; done; echo size=$s; exit 6'",
        ctl.display(),
        d.socket().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script (bsdutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size=27 91"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");

    let (_, err, code) = crustctl_with_input(&d, &["exec", "-i", "nosuch", "true"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("NotFound"), "{err}");
    assert_no_session_files(&d);
}
