//! Exec latency benchmark: ExecSync of `true` and a streamed exec of `true` (the CRI `Exec`
//! RPC, then crust's own remotecommand client over SPDY/3.1 with stdout and stderr, as
//! `kubectl exec` asks) in a running busybox container, N times each, through crustd and,
//! side by side with the same client, through a private Debian containerd (its CRI
//! streaming server, so the streamed half is also an interop check of our client). Prints
//! medians and the ratios crustd/containerd. Run via `bench/exec.sh`.
//!
//! Usage: `bench_exec [RUNS]` (default 30). Needs root, docker-registry and containerd.
//! `BENCH_LOG=1 RUST_LOG=info,crust_daemon::runtime::exec_stream=debug` also prints
//! crustd's per-exec phase timings.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crust_e2e::containerd::Containerd;
use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{Leftovers, Runtime};
use crust_streaming::client::{remote_command, ClientStdio, RemoteCommandOptions, Transport};
use k8s_cri::v1 as cri;
use tokio::io::AsyncReadExt as _;

/// Medians in ms: (ExecSync, streamed exec).
struct Timings {
    sync: Vec<Duration>,
    stream: Vec<Duration>,
}

async fn exec_sync(rt: &mut Runtime, id: &str) -> anyhow::Result<()> {
    let r = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["/bin/true".into()],
            timeout: 10,
        })
        .await
        .context("ExecSync")?
        .into_inner();
    if r.exit_code != 0 {
        bail!("ExecSync true exited {}", r.exit_code);
    }
    Ok(())
}

async fn exec_stream(rt: &mut Runtime, id: &str) -> anyhow::Result<()> {
    let url = rt
        .exec(cri::ExecRequest {
            container_id: id.into(),
            cmd: vec!["/bin/true".into()],
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .await
        .context("Exec")?
        .into_inner()
        .url;
    let out = remote_command(
        &url,
        &RemoteCommandOptions::new(Transport::Spdy, false),
        ClientStdio {
            stdout: Some(Box::new(tokio::io::sink())),
            stderr: Some(Box::new(tokio::io::sink())),
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("streamed exec at {url}"))?;
    if out.exit_code != 0 {
        bail!("streamed true exited {}", out.exit_code);
    }
    Ok(())
}

async fn bench(socket: &Path, img: &str, runs: usize) -> anyhow::Result<Timings> {
    let mut rt = Runtime::new(crust_e2e::cri::connect(socket).await);
    let logs = tempfile::tempdir()?;
    let (pod, id) =
        crust_e2e::bench::start_host_pod(&mut rt, "bench-exec", img, logs.path()).await?;
    // Interop check: output, stderr and a non-zero exit code arrive.
    let url = rt
        .exec(cri::ExecRequest {
            container_id: id.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 3".into(),
            ],
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .await
        .context("Exec")?
        .into_inner()
        .url;
    let (o, mut or) = tokio::io::duplex(4096);
    let (e, mut er) = tokio::io::duplex(4096);
    let outcome = remote_command(
        &url,
        &RemoteCommandOptions::new(Transport::Spdy, false),
        ClientStdio {
            stdout: Some(Box::new(o)),
            stderr: Some(Box::new(e)),
            ..Default::default()
        },
    )
    .await
    .context("streamed exec exiting 3")?;
    let (mut out, mut err) = (String::new(), String::new());
    or.read_to_string(&mut out).await?;
    er.read_to_string(&mut err).await?;
    if (outcome.exit_code, out.as_str(), err.as_str()) != (3, "out\n", "err\n") {
        bail!(
            "streamed exec: exit {} stdout {out:?} stderr {err:?}",
            outcome.exit_code
        );
    }
    // Warm-up, not counted.
    for _ in 0..3 {
        exec_sync(&mut rt, &id).await?;
        exec_stream(&mut rt, &id).await?;
    }
    let mut t = Timings {
        sync: Vec::new(),
        stream: Vec::new(),
    };
    for _ in 0..runs {
        let s = Instant::now();
        exec_sync(&mut rt, &id).await?;
        t.sync.push(s.elapsed());
        let s = Instant::now();
        exec_stream(&mut rt, &id).await?;
        t.stream.push(s.elapsed());
    }
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .context("StopPodSandbox")?;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .context("RemovePodSandbox")?;
    Ok(t)
}

fn median(v: &[Duration]) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !crust_e2e::is_root() {
        bail!("run as root");
    }
    let runs: usize = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .with_context(|| format!("usage: bench_exec [RUNS]; got {a:?}"))?,
        None => 30,
    };
    let crustd = crust_e2e::bench::crustd_bin();
    let images = crust_e2e::bench::BenchImages::push().await;
    let (reg, name, pause_name) = (&images.reg, images.busybox.clone(), images.pause.clone());

    let d = Crustd::start_bin(&crustd, "[network]\nenabled = false\n");
    let _g = Leftovers(d.dir.path().to_path_buf());
    crust_e2e::cri::Images::new(d.channel().await)
        .pull(&name, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let crust = bench(&d.socket(), &name, runs).await;
    if let Err(e) = &crust {
        eprintln!("crustd failed: {e:#}\n{}", d.log());
    }
    let crust = crust?;
    if std::env::var_os("BENCH_LOG").is_some() {
        // With RUST_LOG=crust_daemon::runtime::exec_stream=debug: crustd's phase timings.
        for l in d
            .log()
            .lines()
            .filter(|l| l.contains("streamed exec finished"))
        {
            eprintln!("{l}");
        }
    }
    drop(d);

    let c = Containerd::start(&reg.host(), Some(&pause_name), None)?;
    let mut imgs = crust_e2e::cri::Images::new(crust_e2e::cri::connect(&c.socket()).await);
    for i in [&name, &pause_name] {
        imgs.pull(i, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let ctrd = bench(&c.socket(), &name, runs).await;
    if let Err(e) = &ctrd {
        eprintln!("containerd failed: {e:#}\n{}", c.log());
    }
    let ctrd = ctrd?;
    drop(c);

    println!(
        "{runs} execs of `true` each (median ms) {:>8} {:>12} {:>8}",
        "crustd", "containerd", "ratio"
    );
    for (n, a, b) in [
        ("ExecSync", &crust.sync, &ctrd.sync),
        ("Exec + SPDY stream", &crust.stream, &ctrd.stream),
    ] {
        let (x, y) = (median(a), median(b));
        println!(
            "{n:<36} {x:>8.1} {y:>12.1} {:>8.2}  (target <= 0.30)",
            x / y
        );
    }
    Ok(())
}
