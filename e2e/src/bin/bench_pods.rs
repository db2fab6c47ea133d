//! Pod start benchmark: the same pod (RunPodSandbox + CreateContainer + StartContainer of a
//! busybox `sleep`, image already present, then StopPodSandbox and RemovePodSandbox) N times
//! through crustd (crust-shim + crust-runc) and, with the same Rust CRI client, through a
//! private Debian containerd (CRI plugin, runc, `restrict_oom_score_adj = true`, a local
//! pause image). Two layouts in one run: "host", both roots on this machine's own root
//! filesystem (under /var/lib/cp-bench-*), and "loop", each runtime's root on a fresh
//! journaled ext4 (`crust_e2e::scratch`). All four (runtime, layout) pairs run interleaved
//! pod by pod, the order rotating each round, so the shared machine's load falls on all of
//! them alike. Pods use the host network (pod networking: `--network`). Prints per-phase
//! medians and ratios for both layouts with the load average, crustd's RSS idle, and saves
//! the per-pod samples and a PNG of the latency distributions under `bench::out_dir()`.
//! Run via `bench/pods.sh`.
//!
//! With `--network`, pod networking instead (`bench/network.sh`): RunPodSandbox and
//! StopPodSandbox + RemovePodSandbox of pods with their own network namespace, side by
//! side through crustd's built-in bridge, crustd with Debian's CNI bridge + host-local +
//! portmap plugins, and the private containerd with the same CNI config; prints medians
//! and the ratios to containerd. Bridges, nft tables, pods and processes are removed
//! after, also on failure.
//!
//! Usage: `bench_pods [--network] [RUNS]` (default 20). Needs root, docker-registry and
//! containerd (and containernetworking-plugins for `--network`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crust_e2e::bench::{self, BenchCrustd};
use crust_e2e::containerd::Containerd;
use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{container_config, pod_config, Leftovers, Runtime};
use crust_e2e::registry::Registry;
use crust_e2e::scratch::Scratch;
use k8s_cri::v1 as cri;

#[derive(Default, Clone)]
struct Phases {
    run: Vec<Duration>,
    create: Vec<Duration>,
    start: Vec<Duration>,
    stop: Vec<Duration>,
    remove: Vec<Duration>,
    /// stop + remove.
    teardown: Vec<Duration>,
}

/// One pod, timed phase by phase; with `keep` it is left running (no stop/remove).
async fn one_pod(
    rt: &mut Runtime,
    i: usize,
    img: &str,
    logs: &Path,
    keep: bool,
    ph: Option<&mut Phases>,
) -> anyhow::Result<String> {
    let pc = bench::host_pod(&format!("bench-{i}"), logs);
    let t = Instant::now();
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pc.clone()),
            runtime_handler: String::new(),
        })
        .await
        .context("RunPodSandbox")?
        .into_inner()
        .pod_sandbox_id;
    let t_run = t.elapsed();
    let t = Instant::now();
    let ctr = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("app", img, &["/bin/sleep", "100000"])),
            sandbox_config: Some(pc),
        })
        .await
        .context("CreateContainer")?
        .into_inner()
        .container_id;
    let t_create = t.elapsed();
    let t = Instant::now();
    rt.start_container(cri::StartContainerRequest { container_id: ctr })
        .await
        .context("StartContainer")?;
    let t_start = t.elapsed();
    if keep {
        return Ok(pod);
    }
    let t = Instant::now();
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .context("StopPodSandbox")?;
    let t_stop = t.elapsed();
    let t = Instant::now();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .context("RemovePodSandbox")?;
    let t_remove = t.elapsed();
    if let Some(ph) = ph {
        ph.run.push(t_run);
        ph.create.push(t_create);
        ph.start.push(t_start);
        ph.stop.push(t_stop);
        ph.remove.push(t_remove);
        ph.teardown.push(t_stop + t_remove);
    }
    Ok(pod)
}

fn median(v: &[Duration]) -> f64 {
    bench::median_ms(v)
}

/// One runtime in one layout, as the interleaved loop drives it.
struct Side {
    runtime: &'static str,
    layout: &'static str,
    rt: Runtime,
    logs: tempfile::TempDir,
    ph: Phases,
}

impl Side {
    async fn new(
        runtime: &'static str,
        layout: &'static str,
        socket: &Path,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            runtime,
            layout,
            rt: Runtime::new(crust_e2e::cri::connect(socket).await),
            logs: tempfile::Builder::new()
                .prefix("cp-bench-logs-")
                .tempdir()?,
            ph: Phases::default(),
        })
    }

    fn label(&self) -> String {
        format!("{}-{}", self.runtime, self.layout)
    }
}

/// containerd in `parent` with both images pulled.
async fn containerd_in(
    parent: &Path,
    reg: &str,
    img: &str,
    pause: &str,
) -> anyhow::Result<Containerd> {
    let c = Containerd::start_in(parent, reg, Some(pause), None)?;
    let mut imgs = crust_e2e::cri::Images::new(crust_e2e::cri::connect(&c.socket()).await);
    for i in [img, pause] {
        imgs.pull(i, None)
            .await
            .map_err(|e| anyhow::anyhow!("containerd pull {i}: {e:?}"))?;
    }
    Ok(c)
}

/// The pod start benchmark (see the module docs).
async fn bench_pods(
    crustd: &Path,
    reg: &Registry,
    name: &str,
    pause_name: &str,
    runs: usize,
) -> anyhow::Result<()> {
    // Layout "host": both roots on this machine's own root filesystem (ext4, no journal).
    let host = tempfile::Builder::new()
        .prefix("cp-bench-")
        .tempdir_in("/var/lib")?;
    let fstype = crust_e2e::scratch::sh(
        "stat",
        &["-f", "-c", "%T", &host.path().display().to_string()],
    )?;
    // Layout "loop": each runtime on a fresh journaled ext4 (crust_e2e::scratch).
    let (crust_fs, ctrd_fs) = (Scratch::new()?, Scratch::new()?);
    let cfg = "[network]\nenabled = false\n";
    // crustd logs at info, as installed; with BENCH_CRUSTD_LOG at debug for crust_daemon
    // (CreateContainer's phase timings), saved to that file at the end.
    let level = if std::env::var_os("BENCH_CRUSTD_LOG").is_some() {
        "info,crust_daemon=debug"
    } else {
        "info"
    };
    let crust_host = BenchCrustd::start_level(crustd, cfg, host.path(), level);
    let crust_loop = BenchCrustd::start_level(crustd, cfg, crust_fs.path(), level);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = crust_host.d.pid().unwrap_or(0);
    let fresh = (
        bench::status_kb(pid, "VmRSS:"),
        bench::status_kb(pid, "RssAnon:"),
    );
    for d in [&crust_host.d, &crust_loop.d] {
        crust_e2e::cri::Images::new(d.channel().await)
            .pull(name, None)
            .await
            .map_err(|e| anyhow::anyhow!("crustd pull: {e:?}"))?;
    }
    let ctrd_host = containerd_in(host.path(), &reg.host(), name, pause_name).await?;
    let ctrd_loop = containerd_in(ctrd_fs.path(), &reg.host(), name, pause_name).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = (
        bench::status_kb(pid, "VmRSS:"),
        bench::status_kb(pid, "RssAnon:"),
    );
    let c_idle = bench::status_kb(ctrd_host.pid(), "VmRSS:");
    let mut sides = vec![
        Side::new("crust", "host", &crust_host.d.socket()).await?,
        Side::new("containerd", "host", &ctrd_host.socket()).await?,
        Side::new("crust", "loop", &crust_loop.d.socket()).await?,
        Side::new("containerd", "loop", &ctrd_loop.socket()).await?,
    ];
    // One warm-up pod each, not counted.
    for s in sides.iter_mut() {
        one_pod(&mut s.rt, 0, name, s.logs.path(), false, None)
            .await
            .with_context(|| s.label())?;
    }
    let mut load = bench::Load::default();
    // Interleaved pod by pod; the order rotates every round so no side always goes first
    // (right after another runtime's teardown freed its inodes).
    let n = sides.len();
    for i in 1..=runs {
        load.sample();
        for k in 0..n {
            let s = &mut sides[(i + k) % n];
            let r = one_pod(&mut s.rt, i, name, s.logs.path(), false, Some(&mut s.ph)).await;
            if let Err(e) = r {
                let log = if s.runtime == "crust" {
                    if s.layout == "host" {
                        crust_host.d.log()
                    } else {
                        crust_loop.d.log()
                    }
                } else if s.layout == "host" {
                    ctrd_host.log()
                } else {
                    ctrd_loop.log()
                };
                eprintln!(
                    "{} failed: {e:#}\n{}",
                    s.label(),
                    log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
                );
                return Err(e);
            }
        }
    }
    load.sample();
    if let Some(p) = std::env::var_os("BENCH_CRUSTD_LOG") {
        // crustd's log (debug for crust_daemon: per-phase timings) for a closer look.
        let log = format!(
            "== host ==\n{}\n== loop ==\n{}",
            crust_host.d.log(),
            crust_loop.d.log()
        );
        std::fs::write(&p, log).with_context(|| format!("write {p:?}"))?;
    }
    drop((ctrd_host, ctrd_loop, crust_host, crust_loop));
    drop((crust_fs, ctrd_fs));

    let get = |rt: &str, layout: &str| {
        sides
            .iter()
            .find(|s| s.runtime == rt && s.layout == layout)
            .map(|s| s.ph.clone())
            .unwrap_or_default()
    };
    let (ch, dh, cl, dl) = (
        get("crust", "host"),
        get("containerd", "host"),
        get("crust", "loop"),
        get("containerd", "loop"),
    );
    println!(
        "\npod start, {runs} pods per runtime and layout, interleaved pod by pod; {}",
        load.summary()
    );
    println!(
        "host = roots on this machine's own root fs ({fstype} at {}), loop = a fresh journaled ext4 per runtime",
        host.path().display()
    );
    println!(
        "{:<22} {:>9} {:>10} {:>7} | {:>9} {:>10} {:>7}",
        "median ms", "crust", "containerd", "ratio", "crust", "containerd", "ratio"
    );
    println!("{:<22} {:^28} | {:^28}", "", "host", "loop");
    type Pick = fn(&Phases) -> &Vec<Duration>;
    let rows: [(&str, Pick); 5] = [
        ("RunPodSandbox", |p| &p.run),
        ("CreateContainer", |p| &p.create),
        ("StartContainer", |p| &p.start),
        ("StopPodSandbox", |p| &p.stop),
        ("RemovePodSandbox", |p| &p.remove),
    ];
    for (label, f) in rows {
        let (a, b, c, d) = (
            median(f(&ch)),
            median(f(&dh)),
            median(f(&cl)),
            median(f(&dl)),
        );
        println!(
            "{label:<22} {a:>9.1} {b:>10.1} {:>7.3} | {c:>9.1} {d:>10.1} {:>7.3}",
            a / b,
            c / d
        );
    }
    // Per-pod sums, then their median (not the sum of medians).
    let sum3 = |p: &Phases| -> Vec<Duration> {
        (0..p.run.len())
            .map(|i| p.run[i] + p.create[i] + p.start[i])
            .collect()
    };
    let (a, b, c, d) = (
        median(&sum3(&ch)),
        median(&sum3(&dh)),
        median(&sum3(&cl)),
        median(&sum3(&dl)),
    );
    println!(
        "{:<22} {a:>9.1} {b:>10.1} {:>7.3} | {c:>9.1} {d:>10.1} {:>7.3}  (target <= 0.10)",
        "run+create+start",
        a / b,
        c / d
    );
    let (a, b, c, d) = (
        median(&ch.teardown),
        median(&dh.teardown),
        median(&cl.teardown),
        median(&dl.teardown),
    );
    println!(
        "{:<22} {a:>9.1} {b:>10.1} {:>7.3} | {c:>9.1} {d:>10.1} {:>7.3}",
        "stop+remove",
        a / b,
        c / d
    );
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "crustd (host) RSS (anon) idle fresh {:.1} ({:.1}) MB, after a pull {:.1} ({:.1}) MB; containerd idle {:.1} MB; {}",
        mb(fresh.0), mb(fresh.1), mb(idle.0), mb(idle.1), mb(c_idle), load.summary()
    );
    plot(&sides);
    Ok(())
}

/// Per-side data files (sorted samples per phase) and a PNG of the latency distribution.
fn plot(sides: &[Side]) {
    let out = bench::out_dir();
    for s in sides {
        let mut cols: Vec<Vec<Duration>> = [
            &s.ph.run,
            &s.ph.create,
            &s.ph.start,
            &s.ph.stop,
            &s.ph.remove,
        ]
        .iter()
        .map(|v| {
            let mut v = v.to_vec();
            v.sort();
            v
        })
        .collect();
        let n = cols[0].len();
        let rows: Vec<String> = (0..n)
            .map(|i| {
                let q = if n > 1 {
                    i as f64 / (n - 1) as f64
                } else {
                    0.5
                };
                let ms: Vec<String> = cols
                    .iter_mut()
                    .map(|c| format!("{:.3}", c[i].as_secs_f64() * 1e3))
                    .collect();
                format!("{q:.4} {}", ms.join(" "))
            })
            .collect();
        let _ = bench::write_dat(
            &out.join(format!("pods-{}.dat", s.label())),
            "quantile run create start stop remove (ms, each column sorted)",
            &rows,
        );
    }
    let png = out.join("pods.png");
    let mut gp = bench::png_header(&png, 1500, 900);
    gp.push_str("set multiplot layout 2,3 title 'pod phases: latency distribution (quantile vs ms, log scale)'\nset logscale y\nset xlabel 'quantile'\nset ylabel 'ms'\n");
    for (col, phase) in [
        (2, "RunPodSandbox"),
        (3, "CreateContainer"),
        (4, "StartContainer"),
        (5, "StopPodSandbox"),
        (6, "RemovePodSandbox"),
    ] {
        let series: Vec<String> = sides
            .iter()
            .map(|s| {
                format!(
                    "'{}' using 1:{col} with linespoints pt 7 ps 0.4 title '{}'",
                    out.join(format!("pods-{}.dat", s.label())).display(),
                    s.label()
                )
            })
            .collect();
        gp.push_str(&format!(
            "set title '{phase}'\nplot {}\n",
            series.join(", ")
        ));
    }
    gp.push_str("unset multiplot\n");
    bench::gnuplot(&gp, &png);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !crust_e2e::is_root() {
        bail!("run as root");
    }
    let mut network = false;
    let mut runs = 20;
    for a in std::env::args().skip(1) {
        if a == "--network" {
            network = true;
        } else {
            runs = a
                .parse()
                .with_context(|| format!("usage: bench_pods [--network] [RUNS]; got {a:?}"))?;
        }
    }
    let crustd = bench::crustd_bin();
    let images = bench::BenchImages::push().await;
    let (reg, name, pause_name) = (&images.reg, images.busybox.clone(), images.pause.clone());
    if network {
        return net::bench_network(&crustd, &reg.host(), &pause_name, runs).await;
    }
    bench_pods(&crustd, reg, &name, &pause_name, runs).await
}

/// The pod networking benchmark (`--network`).
mod net {
    use super::*;

    /// Deletes the benchmark's bridges and their nft tables on drop, also on failure.
    struct Bridges(Vec<String>);

    impl Drop for Bridges {
        fn drop(&mut self) {
            for b in &self.0 {
                let _ = Command::new("ip")
                    .args(["link", "del", b])
                    .stderr(Stdio::null())
                    .status();
                let _ = Command::new("nft")
                    .args(["delete", "table", "inet", &format!("crust-{b}")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    /// Host links and named network namespaces, to show what a run leaves behind.
    fn host_state() -> Vec<String> {
        let links = Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut v: Vec<String> = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| format!("link {}", n.split('@').next().unwrap_or(n)))
            .collect();
        for e in std::fs::read_dir("/var/run/netns")
            .into_iter()
            .flatten()
            .flatten()
        {
            v.push(format!("netns {}", e.file_name().to_string_lossy()));
        }
        let out = |cmd: &str, args: &[&str]| {
            Command::new(cmd)
                .args(args)
                .stderr(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        for l in out("nft", &["list", "tables"]).lines() {
            v.push(l.to_string());
        }
        for l in out("iptables-save", &["-t", "nat"]).lines() {
            if let Some(chain) = l.strip_prefix(':') {
                v.push(format!(
                    "iptables nat {}",
                    chain.split(' ').next().unwrap_or("")
                ));
            }
        }
        for e in std::fs::read_dir("/sys/fs/cgroup/memory/k8s.io")
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.path().is_dir() {
                v.push(format!("cgroup k8s.io/{}", e.file_name().to_string_lossy()));
            }
        }
        v.sort();
        v
    }

    /// Stops and removes every pod `socket`'s runtime knows (cleanup after a failure).
    async fn remove_all(socket: &Path) {
        let mut rt = Runtime::new(crust_e2e::cri::connect(socket).await);
        let Ok(list) = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
        else {
            return;
        };
        for p in list.into_inner().items {
            let _ = rt
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: p.id.clone(),
                })
                .await;
            let _ = rt
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: p.id,
                })
                .await;
        }
    }

    /// One pod with its own network: (RunPodSandbox, StopPodSandbox + RemovePodSandbox).
    /// Checks, outside the timed calls, that the pod got an IP starting with `prefix`.
    async fn one_pod(
        rt: &mut Runtime,
        i: usize,
        logs: &Path,
        prefix: &str,
    ) -> anyhow::Result<(Duration, Duration)> {
        let pc = pod_config(&format!("net-{i}"), logs.to_str().unwrap_or("/tmp"));
        let t = Instant::now();
        let pod = rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pc),
                runtime_handler: String::new(),
            })
            .await
            .context("RunPodSandbox")?
            .into_inner()
            .pod_sandbox_id;
        let t_run = t.elapsed();
        let ip = rt
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            })
            .await
            .context("PodSandboxStatus")?
            .into_inner()
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        if !ip.starts_with(prefix) {
            bail!("pod {pod} has IP {ip:?}, expected one in {prefix}0/24");
        }
        let t = Instant::now();
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
        Ok((t_run, t.elapsed()))
    }

    /// One warm-up pod, then `runs` timed ones.
    async fn timed(socket: &Path, runs: usize, prefix: &str) -> anyhow::Result<Phases> {
        let mut rt = Runtime::new(crust_e2e::cri::connect(socket).await);
        let logs = tempfile::tempdir()?;
        let mut ph = Phases::default();
        one_pod(&mut rt, 0, logs.path(), prefix).await?;
        for i in 1..=runs {
            let (run, td) = one_pod(&mut rt, i, logs.path(), prefix).await?;
            ph.run.push(run);
            ph.teardown.push(td);
        }
        Ok(ph)
    }

    /// [`timed`], removing whatever pods are left on failure.
    async fn bench(socket: &Path, runs: usize, prefix: &str) -> anyhow::Result<Phases> {
        let r = timed(socket, runs, prefix).await;
        if r.is_err() {
            remove_all(socket).await;
        }
        r
    }

    /// crustd with `[network]` section `net`, benchmarked; the log is printed on failure.
    async fn crustd_mode(
        crustd: &Path,
        net: &str,
        runs: usize,
        prefix: &str,
    ) -> anyhow::Result<Phases> {
        let d = Crustd::start_bin(crustd, &format!("[network]\n{net}"));
        let _g = Leftovers(d.dir.path().to_path_buf());
        let r = bench(&d.socket(), runs, prefix).await;
        if let Err(e) = &r {
            eprintln!("crustd failed: {e:#}\n{}", d.log());
        }
        r
    }

    /// Runs the three modes and prints the table.
    pub async fn bench_network(
        crustd: &Path,
        registry: &str,
        pause: &str,
        runs: usize,
    ) -> anyhow::Result<()> {
        let before = host_state();
        let n = std::process::id() % 10000;
        let (builtin_br, cni_br) = (format!("cbnb{n}"), format!("cbnc{n}"));
        let _bridges = Bridges(vec![builtin_br.clone(), cni_br.clone()]);
        let tmp = tempfile::tempdir()?;
        let empty = tmp.path().join("empty");
        let conf = tmp.path().join("net.d");
        std::fs::create_dir_all(&empty)?;
        std::fs::create_dir_all(&conf)?;
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("crustbench{n}"),
            "plugins": [
                {
                    "type": "bridge", "bridge": cni_br, "isGateway": true, "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": "10.202.0.0/24"}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": tmp.path().join("host-local"),
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        std::fs::write(
            conf.join("10-bench.conflist"),
            serde_json::to_vec_pretty(&conflist)?,
        )?;

        let builtin = crustd_mode(
            crustd,
            &format!(
                "bridge = \"{builtin_br}\"\nsubnet = \"10.201.0.0/24\"\ncni_conf_dir = \"{}\"\ncni_bin_dirs = [\"/usr/lib/cni\"]\n",
                empty.display()
            ),
            runs,
            "10.201.0.",
        )
        .await?;
        let cni = crustd_mode(
            crustd,
            &format!(
                "bridge = \"{builtin_br}\"\nsubnet = \"10.201.0.0/24\"\ncni_conf_dir = \"{}\"\ncni_bin_dirs = [\"/usr/lib/cni\"]\n",
                conf.display()
            ),
            runs,
            "10.202.0.",
        )
        .await?;

        let c = Containerd::start(registry, Some(pause), Some(&conf))?;
        crust_e2e::cri::Images::new(crust_e2e::cri::connect(&c.socket()).await)
            .pull(pause, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let r = bench(&c.socket(), runs, "10.202.0.").await;
        if let Err(e) = &r {
            eprintln!("containerd failed: {e:#}\n{}", c.log());
        }
        let ctrd = r?;
        drop(c);

        println!(
            "{runs} pods with networking (median ms) {:>9} {:>9} {:>11} {:>11} {:>11}",
            "built-in", "CNI", "containerd", "built-in/c", "CNI/c"
        );
        for (name, a, b, c) in [
            ("RunPodSandbox", &builtin.run, &cni.run, &ctrd.run),
            (
                "StopPodSandbox+RemovePod",
                &builtin.teardown,
                &cni.teardown,
                &ctrd.teardown,
            ),
        ] {
            let (a, b, c) = (median(a), median(b), median(c));
            println!(
                "{name:<34} {a:>9.1} {b:>9.1} {c:>11.1} {:>11.3} {:>11.3}",
                a / c,
                b / c
            );
        }
        println!("target: built-in RunPodSandbox <= 0.10 x containerd's");
        drop(_bridges);
        let after = host_state();
        let left: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
        if left.is_empty() {
            println!("leftovers: none (links, /var/run/netns, nft tables, iptables nat chains, k8s.io cgroups as before)");
        } else {
            println!("leftovers: {left:?}");
        }
        Ok(())
    }
}
