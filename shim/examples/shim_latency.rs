//! Request latency of an idle shim (its code pages dropped, see crust_shim::memory)
//! versus a busy one. Usage: `shim_latency <address> <container id>`; prints the time of
//! the first State after 1 s idle, and the median of 50 back-to-back States.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::TaskClient;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let c = TaskClient::new(
        ttrpc::asynchronous::Client::connect(&args[1])
            .await
            .expect("connect"),
    );
    let mut r = api::StateRequest::new();
    r.id = args[2].clone();
    let ctx = || ttrpc::context::with_timeout(10_000_000_000);
    let mut cold = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        c.state(ctx(), &r).await.expect("state");
        cold.push(t.elapsed());
    }
    let mut warm = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        c.state(ctx(), &r).await.expect("state");
        warm.push(t.elapsed());
    }
    cold.sort();
    warm.sort();
    println!(
        "State after 1 s idle: median {:?} (min {:?}, max {:?}); back-to-back: median {:?}",
        cold[2], cold[0], cold[4], warm[25]
    );
}
