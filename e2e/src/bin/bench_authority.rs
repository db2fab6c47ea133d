//! Cost of the `:authority` adapter on the common path: latency of Version and
//! ListPodSandbox (3 pods) from a tonic client (which sends a valid `:authority`, so no
//! rewrite happens, but every frame is scanned and every header block decoded) through
//! two crustd processes side by side, one with the adapter (the default) and one with
//! `CRUST_AUTHORITY_FIX=0`. The calls alternate between the two in rounds, so load on the
//! shared machine hits both alike. Prints median and p90 per call and the ratios
//! adapter/plain. Run via `bench/authority.sh`.
//!
//! Usage: `bench_authority [CALLS]` (per RPC per daemon, default 3000). Needs root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{pod_config, Leftovers, Runtime};
use k8s_cri::v1 as cri;

const ROUNDS: usize = 10;

#[derive(Default)]
struct Samples {
    version: Vec<Duration>,
    list: Vec<Duration>,
}

async fn round(rt: &mut Runtime, calls: usize, s: &mut Samples) -> anyhow::Result<()> {
    for _ in 0..calls {
        let t = Instant::now();
        rt.version(cri::VersionRequest::default())
            .await
            .context("Version")?;
        s.version.push(t.elapsed());
    }
    for _ in 0..calls {
        let t = Instant::now();
        let n = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest::default())
            .await
            .context("ListPodSandbox")?
            .into_inner()
            .items
            .len();
        s.list.push(t.elapsed());
        if n != 3 {
            bail!("ListPodSandbox returned {n} pods, want 3");
        }
    }
    Ok(())
}

fn quantile(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).map(|d| d.as_secs_f64() * 1e6).unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !crust_e2e::is_root() {
        bail!("run as root");
    }
    let calls: usize = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .with_context(|| format!("usage: bench_authority [CALLS]; got {a:?}"))?,
        None => 3000,
    };
    let crustd = std::env::var_os("CRUSTD")
        .map(PathBuf::from)
        .unwrap_or_else(|| crust_e2e::workspace_bin("crust-cri", "crustd"));
    let cfg = "[network]\nenabled = false\n";
    let tmp = std::env::temp_dir();
    let with = Crustd::start_bin_env(&crustd, cfg, &tmp, &[]);
    let _g1 = Leftovers(with.dir.path().to_path_buf());
    let plain = Crustd::start_bin_env(&crustd, cfg, &tmp, &[("CRUST_AUTHORITY_FIX", "0")]);
    let _g2 = Leftovers(plain.dir.path().to_path_buf());
    let logs = tempfile::tempdir()?;
    let log_dir = logs.path().to_str().unwrap_or("/tmp");
    let mut clients = Vec::new();
    for d in [&with, &plain] {
        let mut rt = Runtime::new(d.channel().await);
        for i in 0..3 {
            rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pod_config(&format!("bench-authority-{i}"), log_dir)),
                runtime_handler: String::new(),
            })
            .await
            .context("RunPodSandbox")?;
        }
        // Warm up both connections.
        round(&mut rt, 50, &mut Samples::default()).await?;
        clients.push(rt);
    }
    let (mut a, mut b) = (Samples::default(), Samples::default());
    let per_round = calls.div_ceil(ROUNDS);
    for r in 0..ROUNDS {
        // Alternate which goes first.
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let s = if i == 0 { &mut a } else { &mut b };
            round(&mut clients[i], per_round, s).await?;
        }
    }
    for rt in &mut clients {
        let pods = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest::default())
            .await?
            .into_inner()
            .items;
        for p in pods {
            crust_e2e::pods::remove_pod(rt, &p.id).await;
        }
    }
    println!(
        "{} calls each, alternating in {ROUNDS} rounds (µs)   {:>9} {:>9} {:>7}",
        per_round * ROUNDS,
        "adapter",
        "plain",
        "ratio"
    );
    for (n, x, y) in [
        ("Version", &a.version, &b.version),
        ("ListPodSandbox (3 pods)", &a.list, &b.list),
    ] {
        for (q, label) in [(0.5, "median"), (0.9, "p90")] {
            let (p, r) = (quantile(x, q), quantile(y, q));
            println!(
                "{:<44} {p:>9.1} {r:>9.1} {:>7.3}",
                format!("{n} {label}"),
                p / r
            );
        }
    }
    Ok(())
}
