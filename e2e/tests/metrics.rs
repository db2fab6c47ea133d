//! crustd's `/metrics`, scraped by a real Prometheus server (Debian's `prometheus`) started
//! here, and answered through PromQL: per-RPC requests, errors by code and latency, pods,
//! containers and shims, image pulls, crustd's own memory and fds. Needs root (pods) and
//! the prometheus package (deploy/deps.sh installs it); skips with a reason otherwise.

use crust_e2e::pods::{self, container_config, pod_config};
use crust_e2e::prometheus::{self, Prometheus};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_crustd_and_answers_promql() {
    require_root!();
    let Some(bin) = prometheus::binary() else {
        eprintln!("skipped: prometheus not installed (deploy/deps.sh installs it)");
        return;
    };
    let port = crust_e2e::free_port();
    let config = format!(
        "{}[metrics]\naddress = \"127.0.0.1:{port}\"\n",
        pods::config()
    );
    // A registry, a pulled busybox, a crustd with /metrics on.
    let (_reg, d, mut rt, img, logs, _g) = pods::setup_with(&config).await;
    let pc = pod_config("metricspod", logs.path().to_str().expect("utf-8"));
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let _c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("s", &img, &["sleep", "1000"]),
    )
    .await
    .expect("create+start");
    for _ in 0..3 {
        rt.version(kc::VersionRequest::default())
            .await
            .expect("Version");
    }
    let missing = rt
        .container_status(kc::ContainerStatusRequest {
            container_id: "no-such-container".into(),
            verbose: false,
        })
        .await
        .expect_err("ContainerStatus of nothing fails");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // The failure is logged at warn with the method, the id and the cause.
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("call failed") && l.contains("no-such-container"))
        .unwrap_or_else(|| panic!("no warn line for the failed call:\n{log}"));
    assert!(
        line.contains("WARN") && line.contains("ContainerStatus"),
        "{line}"
    );
    assert!(
        line.contains("NotFound") && line.contains("not found"),
        "{line}"
    );

    let prom = Prometheus::start(&bin, &[format!("127.0.0.1:{port}")]);
    let ge = |n: f64| move |v: f64| v >= n;
    let eq = |n: f64| move |v: f64| v == n;
    prom.wait_value("up{job=\"crustd\"}", eq(1.0));
    let v = prom.wait_value(
        "sum(crust_grpc_requests_total{method=\"Version\"})",
        ge(3.0),
    );
    println!("sum(crust_grpc_requests_total{{method=\"Version\"}}) = {v}");
    prom.wait_value(
        "crust_grpc_errors_total{method=\"ContainerStatus\",code=\"NotFound\"}",
        ge(1.0),
    );
    prom.wait_value(
        "sum(crust_grpc_request_duration_seconds_count{method=\"Version\"})",
        ge(3.0),
    );
    prom.wait_value(
        "histogram_quantile(0.99, sum by (le) (crust_grpc_request_duration_seconds_bucket{method=\"Version\"}))",
        |v| v > 0.0 && v <= 120.0,
    );
    prom.wait_value("crust_pods{state=\"ready\"}", eq(1.0));
    prom.wait_value("crust_containers{state=\"running\"}", eq(1.0));
    prom.wait_value("crust_shims_alive", eq(1.0));
    prom.wait_value("crust_image_pulls_total", ge(1.0));
    prom.wait_value("crust_image_pull_failures_total", eq(0.0));
    prom.wait_value("crust_image_pull_bytes_total", ge(100_000.0));
    let rss = prom.wait_value("process_resident_memory_bytes", ge(1e6));
    let fds = prom.wait_value("process_open_fds", ge(5.0));
    println!("crustd RSS {rss} bytes, {fds} open fds (as Prometheus scraped them)");
    prom.wait_value("crust_build_info", eq(1.0));
    // Prometheus read every sample: the target reports no scrape error.
    let (_, targets) = prom.get("/api/v1/targets").expect("targets");
    let t: serde_json::Value = serde_json::from_str(&targets).expect("JSON");
    let t = &t["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "{t}");
    assert_eq!(t["lastError"], "", "{t}");

    // The pod goes away: the gauges follow.
    pods::remove_pod(&mut rt, &pod).await;
    prom.wait_value("crust_pods{state=\"ready\"}", eq(0.0));
    prom.wait_value("crust_containers{state=\"running\"}", eq(0.0));
    prom.wait_value("crust_shims_alive", eq(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_off_by_default() {
    require_root!();
    let d = crust_e2e::daemon::Crustd::start(&pods::config());
    let log = d.log();
    let serving = log
        .lines()
        .find(|l| l.contains("crustd serving"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(serving.contains("metrics=\"off\""), "{serving}");
}
