//! What crustd logs, read from a real crustd's log: with the default filter (`info`, from
//! the config) every lifecycle event of an image, a pod and a container is one INFO line
//! naming its id, and nothing below info is printed; with `debug` crust's own debug lines
//! appear but the HTTP/2 and gRPC plumbing (h2, hyper, tower, tonic) stays quiet unless the
//! filter names it. Needs root (pods); the pod test needs crust-shim and crust-runc built.

use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{self, container_config, pod_config};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// Transport crates whose frame-level debug output must stay out of `debug`.
const TRANSPORT: &[&str] = &["h2", "hyper", "hyper_util", "tower", "tonic"];

/// The level of a text log line (`<time> <LEVEL> <spans:> <target>: <message>`).
fn level(line: &str) -> Option<&str> {
    line.split_whitespace().nth(1)
}

/// The lines of `log` at `level` from a transport crate: its target (`h2::proto::...:`)
/// follows the level and any span names (`Connection{peer=Server}:poll:`).
fn transport_lines<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| {
            let mut w = l.split_whitespace().skip(1);
            w.next() == Some(level)
                && w.any(|tok| {
                    tok.ends_with(':') && TRANSPORT.contains(&tok.split("::").next().unwrap_or(""))
                })
        })
        .collect()
}

/// The one INFO line of `log` containing `event` and every one of `ids`.
fn info_line<'a>(log: &'a str, event: &str, ids: &[&str]) -> &'a str {
    let found: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(event) && ids.iter().all(|id| l.contains(id)))
        .collect();
    assert_eq!(found.len(), 1, "one {event:?} line naming {ids:?}:\n{log}");
    assert_eq!(
        level(found[0]),
        Some("INFO"),
        "{event:?} at info: {}",
        found[0]
    );
    found[0]
}

async fn version(d: &Crustd) {
    kc::runtime_service_client::RuntimeServiceClient::new(d.channel().await)
        .version(kc::VersionRequest::default())
        .await
        .expect("Version");
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_events_are_info_lines_and_nothing_below_info_by_default() {
    require_root!();
    let (_reg, mut d, _rt, img, logs, _g) = pods::setup().await;
    // The default filter: no --log-level, the config names none (so `info`).
    assert!(d.stop());
    d.log_level = None;
    d.restart();
    let at = d.log().len();

    kc::image_service_client::ImageServiceClient::new(d.channel().await)
        .pull_image(kc::PullImageRequest {
            image: Some(kc::ImageSpec {
                image: img.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage");
    let mut rt = kc::runtime_service_client::RuntimeServiceClient::new(d.channel().await);
    let pc = pod_config("logspod", logs.path().to_str().expect("utf-8"));
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("quits", &img, &["sh", "-c", "exit 3"]),
    )
    .await
    .expect("create+start");
    assert_eq!(pods::wait_exited(&mut rt, &c).await.exit_code, 3);
    rt.remove_container(kc::RemoveContainerRequest {
        container_id: c.clone(),
    })
    .await
    .expect("RemoveContainer");
    pods::remove_pod(&mut rt, &pod).await;
    // A failed call: warn, naming the method, the id and the cause.
    let e = rt
        .container_status(kc::ContainerStatusRequest {
            container_id: c.clone(),
            verbose: false,
        })
        .await
        .expect_err("the container is gone");
    assert_eq!(e.code(), tonic::Code::NotFound);
    let log = d.log()[at..].to_string();

    info_line(&log, "pulled", &[&img]);
    info_line(&log, "pod sandbox ready", &[&pod]);
    info_line(&log, "container created", &[&c, &pod]);
    info_line(&log, "container started", &[&c]);
    let exited = info_line(&log, "container exited", &[&c]);
    assert!(exited.contains("code=3"), "{exited}");
    info_line(&log, "container removed", &[&c]);
    info_line(&log, "pod sandbox stopped", &[&pod]);
    info_line(&log, "pod sandbox removed", &[&pod]);
    let failed = log
        .lines()
        .find(|l| l.contains("call failed") && l.contains(&c))
        .unwrap_or_else(|| panic!("no line for the failed ContainerStatus:\n{log}"));
    assert_eq!(level(failed), Some("WARN"), "{failed}");
    assert!(
        failed.contains("ContainerStatus") && failed.contains("NotFound"),
        "{failed}"
    );
    // Nothing below info reaches the log by default.
    for l in log.lines() {
        let lv = level(l);
        assert!(
            lv != Some("DEBUG") && lv != Some("TRACE"),
            "below info: {l}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_shows_crust_calls_but_not_transport_frames() {
    require_root!();
    let mut d = Crustd::start(&pods::config());
    assert!(d.stop());
    d.log_level = Some("debug".into());
    d.restart();
    let at = d.log().len();
    for _ in 0..3 {
        version(&d).await;
    }
    let log = d.log()[at..].to_string();
    let calls = log
        .lines()
        .filter(|l| l.contains("call ok") && l.contains("method=\"Version\""))
        .count();
    assert!(calls >= 3, "crust's own debug lines are on:\n{log}");
    for level in ["DEBUG", "TRACE"] {
        let noise = transport_lines(&log, level);
        assert!(noise.is_empty(), "transport {level} lines: {noise:#?}");
    }

    // The check above can see them: named in the filter, h2's frames do show.
    assert!(d.stop());
    d.log_level = Some("debug,h2=debug".into());
    d.restart();
    let at = d.log().len();
    version(&d).await;
    let log = d.log()[at..].to_string();
    let h2: Vec<&str> = transport_lines(&log, "DEBUG")
        .into_iter()
        .filter(|l| l.contains(" h2::"))
        .collect();
    assert!(!h2.is_empty(), "h2's frames when asked for:\n{log}");
}
