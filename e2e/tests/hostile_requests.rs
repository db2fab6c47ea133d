//! Hostile CRI requests (issue 18, medium items): a line break in a pod name must not
//! start a line of its own in crustd's log.

use crust_e2e::pods::{self, pod_config};
use crust_e2e::require_root;

#[tokio::test(flavor = "multi_thread")]
async fn a_newline_in_a_pod_name_does_not_forge_a_log_line() {
    require_root!();
    let (_reg, d, mut rt, _img, logs, _g) = pods::setup().await;
    let marker = format!("FORGED-{}", std::process::id());
    let mut pc = pod_config("nl", logs.path().to_str().unwrap());
    if let Some(m) = pc.metadata.as_mut() {
        m.name = format!("nl\n{marker} level=ERROR\r");
    }
    let pod = pods::run_pod(&mut rt, &pc).await;
    let log = d.log();
    assert!(
        log.contains(&marker),
        "the name was not logged at all:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.trim_start().starts_with(&marker),
            "forged line in crustd's log: {line:?}"
        );
    }
    if let Ok(pod) = pod {
        pods::remove_pod(&mut rt, &pod).await;
    }
}

/// StopContainer's wait and the exit watcher's both see one exit: exactly one Stopped event
/// each (there were two).
#[tokio::test(flavor = "multi_thread")]
async fn stop_container_emits_one_stopped_event() {
    use k8s_cri::v1 as kc;
    use std::collections::BTreeMap;
    use std::time::Duration;
    require_root!();
    let (_reg, _d, mut rt, img, logs, _g) = pods::setup().await;
    let pc = pod_config("onestop", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let cfg = pods::container_config(
            &format!("c{i}"),
            &img,
            &[
                "/bin/sh",
                "-c",
                "trap 'exit 3' TERM; while :; do sleep 0.1; done",
            ],
        );
        ids.push(pods::run_container(&mut rt, &pod, &pc, cfg).await.unwrap());
    }
    let mut events = rt
        .get_container_events(kc::GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    for (i, id) in ids.iter().enumerate() {
        rt.stop_container(kc::StopContainerRequest {
            container_id: id.clone(),
            // Half of them through the stop signal and its wait, half through SIGKILL.
            timeout: if i % 2 == 0 { 10 } else { 0 },
        })
        .await
        .unwrap();
    }
    let mut stopped: BTreeMap<String, usize> = BTreeMap::new();
    while let Ok(Ok(Some(e))) = tokio::time::timeout(Duration::from_secs(2), events.message()).await
    {
        if e.container_event_type == kc::ContainerEventType::ContainerStoppedEvent as i32 {
            *stopped.entry(e.container_id).or_default() += 1;
        }
    }
    for id in &ids {
        assert_eq!(stopped.get(id), Some(&1), "Stopped events: {stopped:?}");
    }
    pods::remove_pod(&mut rt, &pod).await;
}

/// A registry whose token endpoint hands out a token with a line break: PullImage answers
/// with an error naming the cause, and crustd keeps serving. oci-client `unwrap`s that
/// token's parse into an HTTP header: the panic took the request's worker down and the
/// client got a reset stream instead of an answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_token_with_a_line_break_is_an_answer_not_a_panic() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    require_root!();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let (status, extra, body) = if req.starts_with("GET /token") {
                    (
                        "200 OK",
                        String::new(),
                        r#"{"token":"abc\ndef"}"#.to_string(),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"\r\n"),
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string(),
                    )
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    let d = crust_e2e::daemon::Crustd::start(&pods::config());
    let mut images = crust_e2e::cri::Images::new(d.channel().await);
    let e = images
        .pull(&format!("127.0.0.1:{port}/evil/token:v1"), None)
        .await
        .expect_err("a pull with an unusable token cannot succeed");
    assert_ne!(e.code(), tonic::Code::Unknown, "{e:?}\n{}", d.log());
    assert!(e.message().contains("token"), "{e:?}");
    // And crustd answers the next call.
    let e2 = images
        .pull(&format!("127.0.0.1:{port}/evil/token:v2"), None)
        .await
        .expect_err("again");
    assert_ne!(e2.code(), tonic::Code::Unknown, "{e2:?}");
}
