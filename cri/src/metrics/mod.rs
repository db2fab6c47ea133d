//! crustd's Prometheus metrics (OpenMetrics text on `/metrics`, see [`http`]), off unless
//! `[metrics] address` is set. Built on `prometheus-client`, the Prometheus project's Rust
//! client.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `crust_grpc_requests_total` | counter: calls received | `service`, `method` |
//! | `crust_grpc_errors_total` | counter: calls that ended with a non-OK code | `service`, `method`, `code` |
//! | `crust_grpc_request_duration_seconds` | histogram: call latency | `service`, `method` |
//! | `crust_pods` | gauge: pod sandboxes | `state` (`ready`, `notready`) |
//! | `crust_containers` | gauge: containers | `state` (`created`, `running`, `exited`, `unknown`) |
//! | `crust_shims_alive` | gauge: pods whose shim accepts a connection | |
//! | `crust_image_pulls_total` | counter: PullImage calls finished | |
//! | `crust_image_pull_failures_total` | counter: PullImage calls that failed | |
//! | `crust_image_pull_duration_seconds` | histogram: PullImage latency | |
//! | `crust_image_pull_bytes_total` | counter: bytes received from registries | |
//! | `crust_build_info` | info: `version`, `commit` | |
//! | `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_cpu_seconds_total`, `process_start_time_seconds` | crustd itself, as Prometheus' other clients name them | |
//!
//! The gRPC and pull figures are recorded as calls finish (by [`crate::observe`]); the
//! gauges and the process figures are read when `/metrics` is scraped.
//! Label cardinality is bounded: at most [`MAX_METHODS`] distinct method names are kept,
//! later ones are counted as `other` (a client can send any path).

pub mod http;
mod process;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crust_daemon::images::Images;
use crust_daemon::runtime::types::{ContainerState, PodState};
use crust_daemon::runtime::Runtime;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Distinct method labels kept before the rest count as `other`.
pub const MAX_METHODS: usize = 128;

const RPC_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];
const PULL_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// One RPC's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Rpc {
    /// gRPC service, e.g. `runtime.v1.RuntimeService`.
    pub service: String,
    /// Method, e.g. `Version`.
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCode {
    service: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
    commit: &'static str,
}

fn rpc_histogram() -> Histogram {
    Histogram::new(RPC_BUCKETS.iter().copied())
}

/// The metrics of one crustd.
pub struct Metrics {
    registry: Registry,
    requests: Family<Rpc, Counter>,
    errors: Family<RpcCode, Counter>,
    latency: Family<Rpc, Histogram, fn() -> Histogram>,
    pods: Family<State, Gauge>,
    containers: Family<State, Gauge>,
    shims_alive: Gauge,
    pulls: Counter,
    pull_failures: Counter,
    pull_seconds: Histogram,
    pull_bytes: Counter,
    pull_bytes_seen: AtomicU64,
    process: process::Process,
    methods: Mutex<HashSet<String>>,
    runtime: Arc<Runtime>,
    images: Arc<Images>,
}

impl Metrics {
    /// Metrics over `runtime` and `images`.
    pub fn new(runtime: Arc<Runtime>, images: Arc<Images>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Rpc, Counter>::default();
        let errors = Family::<RpcCode, Counter>::default();
        let latency = Family::<Rpc, Histogram, fn() -> Histogram>::new_with_constructor(
            rpc_histogram as fn() -> Histogram,
        );
        let pods = Family::<State, Gauge>::default();
        let containers = Family::<State, Gauge>::default();
        let shims_alive = Gauge::default();
        let pulls = Counter::default();
        let pull_failures = Counter::default();
        let pull_seconds = Histogram::new(PULL_BUCKETS.iter().copied());
        let pull_bytes = Counter::default();
        let process = process::Process::default();
        let crust = registry.sub_registry_with_prefix("crust");
        crust.register(
            "grpc_requests",
            "gRPC calls received, by method",
            requests.clone(),
        );
        crust.register(
            "grpc_errors",
            "gRPC calls that ended with a non-OK status, by method and code",
            errors.clone(),
        );
        crust.register(
            "grpc_request_duration_seconds",
            "gRPC call latency, from request to the end of the response",
            latency.clone(),
        );
        crust.register("pods", "Pod sandboxes by state", pods.clone());
        crust.register("containers", "Containers by state", containers.clone());
        crust.register(
            "shims_alive",
            "Pods whose shim accepts a connection",
            shims_alive.clone(),
        );
        crust.register("image_pulls", "PullImage calls finished", pulls.clone());
        crust.register(
            "image_pull_failures",
            "PullImage calls that failed",
            pull_failures.clone(),
        );
        crust.register(
            "image_pull_duration_seconds",
            "PullImage latency",
            pull_seconds.clone(),
        );
        crust.register(
            "image_pull_bytes",
            "Bytes received from registries (manifests, configs, layers)",
            pull_bytes.clone(),
        );
        crust.register(
            "build",
            "crustd's version and git commit",
            Info::new(Build {
                version: crate::version::PACKAGE,
                commit: crate::version::COMMIT,
            }),
        );
        process.register(&mut registry);
        Self {
            registry,
            requests,
            errors,
            latency,
            pods,
            containers,
            shims_alive,
            pulls,
            pull_failures,
            pull_seconds,
            pull_bytes,
            pull_bytes_seen: AtomicU64::new(0),
            process,
            methods: Mutex::new(HashSet::new()),
            runtime,
            images,
        }
    }

    /// The labels of a call to `/service/method`, with the method cardinality bounded.
    pub fn rpc(&self, service: &str, method: &str) -> Rpc {
        let known = {
            let mut m = self.methods.lock().unwrap_or_else(|p| p.into_inner());
            let key = format!("{service}/{method}");
            m.contains(&key) || (m.len() < MAX_METHODS && m.insert(key))
        };
        if known {
            Rpc {
                service: service.into(),
                method: method.into(),
            }
        } else {
            Rpc {
                service: "other".into(),
                method: "other".into(),
            }
        }
    }

    /// A call arrived.
    pub fn started(&self, rpc: &Rpc) {
        self.requests.get_or_create(rpc).inc();
    }

    /// A call ended with `code` after `took`.
    pub fn finished(&self, rpc: &Rpc, code: tonic::Code, took: Duration) {
        self.latency.get_or_create(rpc).observe(took.as_secs_f64());
        let failed = code != tonic::Code::Ok;
        if failed {
            self.errors
                .get_or_create(&RpcCode {
                    service: rpc.service.clone(),
                    method: rpc.method.clone(),
                    code: format!("{code:?}"),
                })
                .inc();
        }
        if rpc.method == "PullImage" && rpc.service == "runtime.v1.ImageService" {
            self.pulls.inc();
            self.pull_seconds.observe(took.as_secs_f64());
            if failed {
                self.pull_failures.inc();
            }
        }
    }

    /// Reads the gauges (pods, containers, shims, process) for a scrape.
    pub async fn refresh(&self) {
        let pods = self.runtime.pods();
        for (state, st) in [("ready", PodState::Ready), ("notready", PodState::NotReady)] {
            let n = pods.iter().filter(|p| p.state == st).count();
            self.pods.get_or_create(&State { state }).set(n as i64);
        }
        let containers = self.runtime.containers();
        for (state, st) in [
            ("created", ContainerState::Created),
            ("running", ContainerState::Running),
            ("exited", ContainerState::Exited),
            ("unknown", ContainerState::Unknown),
        ] {
            let n = containers.iter().filter(|c| c.state == st).count();
            self.containers
                .get_or_create(&State { state })
                .set(n as i64);
        }
        self.shims_alive.set(self.count_live_shims().await as i64);
        let bytes = self.images.bytes_downloaded();
        let seen = self.pull_bytes_seen.swap(bytes, Ordering::Relaxed);
        self.pull_bytes.inc_by(bytes.saturating_sub(seen));
        self.process.refresh();
    }

    /// Pods whose recorded shim socket accepts a connection (within 200 ms each).
    async fn count_live_shims(&self) -> usize {
        let checks = self
            .runtime
            .pods()
            .into_iter()
            .filter_map(|p| p.shim_address)
            .map(|a| async move {
                let path = a.strip_prefix("unix://").unwrap_or(&a).to_string();
                let c = tokio::net::UnixStream::connect(path);
                matches!(
                    tokio::time::timeout(Duration::from_millis(200), c).await,
                    Ok(Ok(_))
                )
            });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .filter(|alive| *alive)
            .count()
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry)?;
        Ok(s)
    }
}
