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
