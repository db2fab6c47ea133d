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
