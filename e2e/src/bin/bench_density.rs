//! Density benchmark: N pods (10, 110, 250 by default), each with one busybox `sleep`
//! container, started by C concurrent CRI clients (10 by default), then stopped and removed
//! by C clients, through crustd and through a private Debian containerd 1.6 + runc
//! (`restrict_oom_score_adj = true`), both with their roots on this machine's own root
//! filesystem (/var/lib/cp-density-*), host network. The two runtimes alternate per pod
//! count (crustd first for even rounds, containerd first for odd ones).
//!
//! Per N and runtime it prints: wall time to start all pods (RunPodSandbox +
//! CreateContainer + StartContainer per pod), to stop and remove them all, the time of one
//! ListPodSandbox with every pod, RSS of the daemon and of every shim (each process found by
//! pid: crustd's shims are its children; containerd's shims are the parents of its
//! containers' pids), the median and worst per-pod start time under concurrency, and the
//! CPU seconds the daemon itself used in each step (a daemon near wall time x cores would
//! be the bottleneck; on this 2-core machine the shims and runtimes compete for the same
//! CPUs). For crustd it also times a crash restart with the pods running: `kill -9`, start
//! again, until Version and a ListPodSandbox with all N pods ready are answered.
//! Saves a data file and a PNG (pod count against time) under `bench::out_dir()`.
//!
//! Usage: `bench_density [--clients C] [N...]`; run via `bench/density.sh`. Needs root,
//! docker-registry and containerd.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crust_e2e::bench::{self, BenchCrustd};
use crust_e2e::containerd::Containerd;
use crust_e2e::pods::Runtime;
use k8s_cri::v1 as cri;
use tokio::sync::Mutex;

/// Per-call latencies of one concurrent step.
#[derive(Default)]
struct Calls {
    per_pod: Vec<Duration>,
}

/// One figure row.
#[derive(Default, Clone)]
struct Row {
    start: Duration,
    /// CPU seconds the daemon used while the pods started (and while they were removed).
    start_cpu: f64,
    start_p50: f64,
    start_max: f64,
    teardown: Duration,
    teardown_cpu: f64,
    list: Duration,
    daemon_rss_kb: u64,
    shims: usize,
    shim_rss_max_kb: u64,
    shim_rss_mean_kb: u64,
    restart: Option<(Duration, Duration)>,
    load: String,
}

async fn teardown_pod(rt: &mut Runtime, pod: &str) -> anyhow::Result<()> {
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .context("StopPodSandbox")?;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .context("RemovePodSandbox")?;
    Ok(())
}

/// Runs `work(i)` for i in 0..n on `clients` concurrent clients (one connection each);
/// returns the wall time and the per-call times.
async fn concurrently<F, Fut, T>(
    socket: &Path,
    clients: usize,
    n: usize,
    work: F,
) -> anyhow::Result<(Duration, Calls, Vec<T>)>
where
    F: Fn(Runtime, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Runtime, anyhow::Result<T>)> + Send,
    T: Send + 'static,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let out = Arc::new(Mutex::new((Calls::default(), Vec::new())));
    let work = Arc::new(work);
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Runtime::new(crust_e2e::cri::connect(socket).await));
    }
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut rt in conns {
        let (next, out, work) = (next.clone(), out.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let t = Instant::now();
                let (r, res) = work(rt, i).await;
                rt = r;
                let v = res?;
                let mut o = out.lock().await;
                o.0.per_pod.push(t.elapsed());
                o.1.push(v);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = t0.elapsed();
    let (calls, vals) = std::mem::take(&mut *out.lock().await);
    Ok((wall, calls, vals))
}

/// CPU seconds (user + system) `pid` has used so far (`/proc/<pid>/stat`, 100 ticks a second).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, r)| {
            r.split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// Start N pods, measure, (crustd: crash-restart), stop+remove them.
async fn one_count(
    socket: &Path,
    n: usize,
    clients: usize,
    img: &str,
    daemon_pid: u32,
    mut restart: Option<&mut dyn FnMut() -> u32>,
) -> anyhow::Result<Row> {
    let mut load = bench::Load::default();
    load.sample();
    let logs = Arc::new(
        tempfile::Builder::new()
            .prefix("cp-density-logs-")
            .tempdir()?,
    );
    let img = img.to_string();
    let tag = format!("d{n}-{}", std::process::id());
    let cpu0 = cpu_s(daemon_pid);
    let (start, calls, pods) = {
        let logs = logs.clone();
        concurrently(socket, clients, n, move |mut rt, i| {
            let (logs, img, name) = (logs.clone(), img.clone(), format!("{tag}-{i}"));
            async move {
                let r = bench::start_host_pod(&mut rt, &name, &img, logs.path())
                    .await
                    .map(|(pod, _)| pod);
                (rt, r)
            }
        })
        .await?
    };
    load.sample();
    let mut row = Row {
        start,
        start_cpu: cpu_s(daemon_pid) - cpu0,
        start_p50: bench::median_ms(&calls.per_pod),
        start_max: bench::percentile_ms(&calls.per_pod, 1.0),
        ..Default::default()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut rt = Runtime::new(crust_e2e::cri::connect(socket).await);
    let t = Instant::now();
    let listed = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items
        .len();
    row.list = t.elapsed();
    if listed != n {
        bail!("ListPodSandbox returned {listed} pods, started {n}");
    }
    row.daemon_rss_kb = bench::status_kb(daemon_pid, "VmRSS:");
    // crustd's shims are its children; containerd's are daemonised (found from its
    // containers' pids).
    let shim_pids = if restart.is_some() {
        bench::pids_with_parent(daemon_pid)
    } else {
        containerd_shims(socket).await
    };
    let shims: Vec<u64> = shim_pids
        .into_iter()
        .map(|p| bench::status_kb(p, "VmRSS:"))
        .collect();
    row.shims = shims.len();
    row.shim_rss_max_kb = shims.iter().copied().max().unwrap_or(0);
    row.shim_rss_mean_kb = shims.iter().sum::<u64>() / shims.len().max(1) as u64;
    let mut daemon_now = None;
    if let Some(restart) = restart.as_mut() {
        // Crash restart with the pods running: kill -9, start again (returns once the
        // socket accepts), then Version and a ListPodSandbox that must hold every pod ready.
        let t = Instant::now();
        daemon_now = Some(restart());
        let mut rt = Runtime::new(crust_e2e::cri::connect(socket).await);
        rt.version(cri::VersionRequest::default()).await?;
        let t_version = t.elapsed();
        let items = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items;
        let ready = items
            .iter()
            .filter(|p| p.state == cri::PodSandboxState::SandboxReady as i32)
            .count();
        let t_list = t.elapsed();
        if ready != n {
            bail!(
                "after restart: {ready} of {} listed pods ready, expected {n}",
                items.len()
            );
        }
        row.restart = Some((t_version, t_list));
        // Let recovery finish before tearing down (its work runs after serving).
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    load.sample();
    // After a restart the daemon has a new pid.
    let daemon_pid = daemon_now.unwrap_or(daemon_pid);
    let cpu0 = cpu_s(daemon_pid);
    let (teardown, _, _) = {
        let pods = Arc::new(pods);
        concurrently(socket, clients, n, move |mut rt, i| {
            let pod = pods[i].clone();
            async move {
                let r = teardown_pod(&mut rt, &pod).await;
                (rt, r)
            }
        })
        .await?
    };
    load.sample();
    row.teardown = teardown;
    row.teardown_cpu = cpu_s(daemon_pid) - cpu0;
    row.load = load.summary();
    Ok(row)
}

/// containerd's shims: the parents of its containers' processes (each container's pid
/// from the verbose ContainerStatus), deduplicated.
async fn containerd_shims(socket: &Path) -> Vec<u32> {
    let mut rt = Runtime::new(crust_e2e::cri::connect(socket).await);
    let Ok(list) = rt
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
    else {
        return Vec::new();
    };
    let mut shims = std::collections::BTreeSet::new();
    for c in list.into_inner().containers {
        let Ok(st) = rt
            .container_status(cri::ContainerStatusRequest {
                container_id: c.id,
                verbose: true,
            })
            .await
        else {
            continue;
        };
        let info = st.into_inner().info;
        let pid = info
            .get("info")
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| v["pid"].as_u64());
        if let Some(pid) = pid {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok())
            {
                shims.insert(ppid);
            }
        }
    }
    shims.into_iter().collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !crust_e2e::is_root() {
        bail!("run as root");
    }
    let mut clients = 10;
    let mut counts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--clients" {
            clients = args
                .next()
                .and_then(|c| c.parse().ok())
                .context("--clients N")?;
        } else {
            counts.push(a.parse::<usize>().with_context(|| {
                format!("usage: bench_density [--clients C] [N...]; got {a:?}")
            })?);
        }
    }
    if counts.is_empty() {
        counts = vec![10, 110, 250];
    }
    let crustd = bench::crustd_bin();
    let images = bench::BenchImages::push().await;
    let (reg, name, pause_name) = (&images.reg, images.busybox.clone(), images.pause.clone());

    let host = tempfile::Builder::new()
        .prefix("cp-density-")
        .tempdir_in("/var/lib")?;
    // crustd's log at info: debug lines for 250 pods would be measured too.
    // crustd logs at info, as installed.
    let mut cd =
        BenchCrustd::start_level(&crustd, "[network]\nenabled = false\n", host.path(), "info");
    crust_e2e::cri::Images::new(cd.d.channel().await)
        .pull(&name, None)
        .await
        .map_err(|e| anyhow::anyhow!("crustd pull: {e:?}"))?;
    let ctrd = Containerd::start_in(host.path(), &reg.host(), Some(&pause_name), None)?;
    let mut imgs = crust_e2e::cri::Images::new(crust_e2e::cri::connect(&ctrd.socket()).await);
    for i in [&name, &pause_name] {
        imgs.pull(i, None)
            .await
            .map_err(|e| anyhow::anyhow!("containerd pull {i}: {e:?}"))?;
    }

    let mut rows: Vec<(usize, Row, Row)> = Vec::new();
    for (k, &n) in counts.iter().enumerate() {
        let mut crust_row = Row::default();
        let mut ctrd_row = Row::default();
        for first in [k % 2 == 0, k % 2 != 0] {
            if first {
                let pid = cd.d.pid().unwrap_or(0);
                let socket = cd.d.socket();
                let d = &mut cd.d;
                let mut restart = || {
                    d.kill9();
                    d.restart();
                    d.pid().unwrap_or(0)
                };
                crust_row = one_count(&socket, n, clients, &name, pid, Some(&mut restart))
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("crustd, {n} pods: {e:#}\n{}", tail(&cd.d.log()))
                    })?;
            } else {
                let socket = ctrd.socket();
                ctrd_row = one_count(&socket, n, clients, &name, ctrd.pid(), None)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("containerd, {n} pods: {e:#}\n{}", tail(&ctrd.log()))
                    })?;
            }
        }
        rows.push((n, crust_row, ctrd_row));
    }
    drop(ctrd);
    drop(cd);

    println!(
        "\ndensity: pods with one sleep container each, {clients} concurrent clients, roots on the host fs"
    );
    println!(
        "{:<5} {:<10} {:>9} {:>6} {:>8} {:>8} {:>10} {:>6} {:>8} {:>9} {:>6} {:>16}  load",
        "pods",
        "runtime",
        "start s",
        "cpu s",
        "p50 ms",
        "max ms",
        "stop+rm s",
        "cpu s",
        "list ms",
        "daemon MB",
        "shims",
        "shim MB max/mean",
    );
    let mb = |kb: u64| kb as f64 / 1024.0;
    let mut dat = Vec::new();
    for (n, c, d) in &rows {
        for (name, r) in [("crust", c), ("containerd", d)] {
            println!(
                "{n:<5} {name:<10} {:>9.2} {:>6.1} {:>8.1} {:>8.1} {:>10.2} {:>6.1} {:>8.1} {:>9.1} {:>6} {:>7.2}/{:<8.2}  {}",
                r.start.as_secs_f64(),
                r.start_cpu,
                r.start_p50,
                r.start_max,
                r.teardown.as_secs_f64(),
                r.teardown_cpu,
                r.list.as_secs_f64() * 1e3,
                mb(r.daemon_rss_kb),
                r.shims,
                mb(r.shim_rss_max_kb),
                mb(r.shim_rss_mean_kb),
                r.load
            );
        }
        println!(
            "{n:<5} {:<10} {:>9.3} {:>6} {:>8} {:>8} {:>10.3}",
            "ratio",
            c.start.as_secs_f64() / d.start.as_secs_f64(),
            "",
            "",
            "",
            c.teardown.as_secs_f64() / d.teardown.as_secs_f64()
        );
        if let Some((v, l)) = c.restart {
            println!(
                "{n:<5} crust restart after kill -9: Version answered {:.0} ms, ListPodSandbox with all {n} pods ready {:.0} ms (target <= 500)",
                v.as_secs_f64() * 1e3,
                l.as_secs_f64() * 1e3
            );
        }
        dat.push(format!(
            "{n} {:.3} {:.3} {:.3} {:.3}",
            c.start.as_secs_f64(),
            c.teardown.as_secs_f64(),
            d.start.as_secs_f64(),
            d.teardown.as_secs_f64()
        ));
    }
    println!("targets at 110 pods: crust start <= 1 s, stop+remove <= 1 s, crustd <= 15 MB, every shim <= 1.5 MB");
    let out = bench::out_dir();
    let file = out.join("density.dat");
    let _ = bench::write_dat(
        &file,
        "pods crust_start_s crust_stop_remove_s containerd_start_s containerd_stop_remove_s",
        &dat,
    );
    let png = out.join("density.png");
    let mut gp = bench::png_header(&png, 900, 600);
    let f = file.display();
    gp.push_str(&format!(
        "set title 'density: pods vs wall time, {clients} concurrent clients'\nset xlabel 'pods'\nset ylabel 's'\n\
         plot '{f}' using 1:2 with linespoints title 'crust start', '{f}' using 1:3 with linespoints title 'crust stop+remove', \
         '{f}' using 1:4 with linespoints title 'containerd start', '{f}' using 1:5 with linespoints title 'containerd stop+remove'\n"
    ));
    bench::gnuplot(&gp, &png);
    Ok(())
}

/// The last 30 lines of a log.
fn tail(log: &str) -> String {
    let v: Vec<&str> = log.lines().rev().take(30).collect();
    v.into_iter().rev().collect::<Vec<_>>().join("\n")
}
