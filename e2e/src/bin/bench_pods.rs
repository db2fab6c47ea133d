//! Pod start benchmark: the same pod (RunPodSandbox + CreateContainer + StartContainer of a
//! busybox `sleep`, image already present, then stop and remove) N times through crustd
//! (crust-shim + crust-runc) and, side by side with the same Rust CRI client, through a
//! private Debian containerd (CRI plugin, runc, `restrict_oom_score_adj = true`, a local
//! pause image). Pods use the host network on both sides (pod networking is benchmarked
//! by the network issue). Prints per-phase medians and ratios, and crustd's RSS (and its
//! anonymous part) idle fresh, idle after a pull and with 10 pods. Run via `bench/pods.sh`.
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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crust_e2e::containerd::Containerd;
use crust_e2e::daemon::Crustd;
use crust_e2e::image;
use crust_e2e::pods::{container_config, pod_config, Leftovers, Runtime};
use crust_e2e::registry::Registry;
use k8s_cri::v1 as cri;

#[derive(Default)]
struct Phases {
    run: Vec<Duration>,
    create: Vec<Duration>,
    start: Vec<Duration>,
    teardown: Vec<Duration>,
}

fn host_pod(name: &str, logs: &Path) -> cri::PodSandboxConfig {
    let mut p = pod_config(name, logs.to_str().unwrap_or("/tmp"));
    p.hostname = String::new(); // kubelet sends none for host-network pods
    p.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                network: cri::NamespaceMode::Node as i32,
                pid: cri::NamespaceMode::Container as i32,
                ipc: cri::NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    p
}

async fn one_pod(
    rt: &mut Runtime,
    i: usize,
    img: &str,
    logs: &Path,
    keep: bool,
) -> anyhow::Result<(Duration, Duration, Duration, Duration, String)> {
    let pc = host_pod(&format!("bench-{i}"), logs);
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
    let t = Instant::now();
    if !keep {
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .context("StopPodSandbox")?;
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .context("RemovePodSandbox")?;
    }
    Ok((t_run, t_create, t_start, t.elapsed(), pod))
}

async fn bench(socket: &Path, img: &str, runs: usize, phases: &mut Phases) -> anyhow::Result<()> {
    let mut rt = Runtime::new(crust_e2e::cri::connect(socket).await);
    let logs = tempfile::tempdir()?;
    // One warm-up pod, not counted.
    one_pod(&mut rt, 0, img, logs.path(), false).await?;
    for i in 1..=runs {
        let (a, b, c, d, _) = one_pod(&mut rt, i, img, logs.path(), false).await?;
        phases.run.push(a);
        phases.create.push(b);
        phases.start.push(c);
        phases.teardown.push(d);
    }
    Ok(())
}

/// SIGKILLs every process whose command line contains both `needle` and `exe`.
fn median(v: &[Duration]) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// VmRSS in kB of the process listening on (whose command line names) `socket`.
fn rss_of(socket: &Path, exe: &str) -> u64 {
    status_kb(socket, exe, "VmRSS:")
}

/// The `key` line (kB) of /proc/<pid>/status of the process listening on `socket`.
fn status_kb(socket: &Path, exe: &str, key: &str) -> u64 {
    let want = socket.display().to_string();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(exe)
            && (cmd.contains(&want)
                || cmd.contains(
                    &*socket
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ))
        {
            let st = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            if let Some(v) = st.lines().find_map(|l| l.strip_prefix(key)) {
                return v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            }
        }
    }
    0
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
    let crustd = std::env::var_os("CRUSTD")
        .map(PathBuf::from)
        .unwrap_or_else(|| crust_e2e::workspace_bin("crust-cri", "crustd"));
    let reg = Registry::start();
    let img = image::busybox_with_cmd(&["/bin/sh"]);
    image::push(&reg.host(), "bench/busybox", "1", &img, None).await;
    let pause = image::busybox_with_cmd(&["/bin/sleep", "2147483647"]);
    image::push(&reg.host(), "bench/pause", "1", &pause, None).await;
    let name = format!("{}/bench/busybox:1", reg.host());
    let pause_name = format!("{}/bench/pause:1", reg.host());
    if network {
        return net::bench_network(&crustd, &reg.host(), &pause_name, runs).await;
    }

    // crustd.
    // Each runtime's root and state on a fresh journaled ext4 (crust_e2e::scratch).
    let crust_fs = crust_e2e::scratch::Scratch::new()?;
    let d = Crustd::start_bin_in(&crustd, "[network]\nenabled = false\n", crust_fs.path());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fresh = rss_of(&d.socket(), "crustd");
    let fresh_anon = status_kb(&d.socket(), "crustd", "RssAnon:");
    crust_e2e::cri::Images::new(d.channel().await)
        .pull(&name, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_of(&d.socket(), "crustd");
    let idle_anon = status_kb(&d.socket(), "crustd", "RssAnon:");
    if let Some(s) = std::env::var_os("BENCH_HOLD_SECS") {
        // Time to look at the idle daemon (smaps) by hand.
        let secs: u64 = s.to_string_lossy().parse().unwrap_or(0);
        eprintln!("holding {secs}s: crustd socket {}", d.socket().display());
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    let mut crust = Phases::default();
    bench(&d.socket(), &name, runs, &mut crust).await?;
    let mut rt = Runtime::new(crust_e2e::cri::connect(&d.socket()).await);
    let logs = tempfile::tempdir()?;
    let mut pods = Vec::new();
    for i in 0..10 {
        pods.push(one_pod(&mut rt, 100 + i, &name, logs.path(), true).await?.4);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let with10 = rss_of(&d.socket(), "crustd");
    let with10_anon = status_kb(&d.socket(), "crustd", "RssAnon:");
    for p in pods {
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: p })
            .await?;
    }
    if let Some(p) = std::env::var_os("BENCH_CRUSTD_LOG") {
        // crustd's log (debug for crust_daemon: per-phase timings) for a closer look.
        std::fs::write(&p, d.log()).with_context(|| format!("write {p:?}"))?;
    }
    drop(d);
    if std::env::var_os("BENCH_CRUSTD_ONLY").is_some() {
        // Quick look while working on crustd: its medians only, no containerd run.
        let (r, c, s) = (
            median(&crust.run),
            median(&crust.create),
            median(&crust.start),
        );
        println!(
            "{runs} pods, crustd only (median ms): run {r:.1} create {c:.1} start {s:.1} = {:.1}, stop+remove {:.1}",
            r + c + s,
            median(&crust.teardown)
        );
        return Ok(());
    }

    // containerd.
    let ctrd_fs = crust_e2e::scratch::Scratch::new()?;
    let c = Containerd::start_in(ctrd_fs.path(), &reg.host(), Some(&pause_name), None)?;
    let mut imgs = crust_e2e::cri::Images::new(crust_e2e::cri::connect(&c.socket()).await);
    imgs.pull(&name, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    imgs.pull(&pause_name, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let c_idle = rss_of(&c.socket(), "containerd");
    let mut ctrd = Phases::default();
    let r = bench(&c.socket(), &name, runs, &mut ctrd).await;
    if let Err(e) = &r {
        eprintln!("containerd failed: {e:#}\n{}", c.log());
    }
    r?;
    drop(c);

    println!(
        "{runs} pods each (median ms)   {:>10} {:>12} {:>8}",
        "crustd", "containerd", "ratio"
    );
    let mut tot = (0.0, 0.0);
    for (n, a, b) in [
        ("RunPodSandbox", &crust.run, &ctrd.run),
        ("CreateContainer", &crust.create, &ctrd.create),
        ("StartContainer", &crust.start, &ctrd.start),
    ] {
        let (x, y) = (median(a), median(b));
        tot.0 += x;
        tot.1 += y;
        println!("{n:<28} {x:>10.1} {y:>12.1} {:>8.2}", x / y);
    }
    println!(
        "{:<28} {:>10.1} {:>12.1} {:>8.2}  (target <= 0.10)",
        "pod start (sum)",
        tot.0,
        tot.1,
        tot.0 / tot.1
    );
    println!(
        "{:<28} {:>10.1} {:>12.1} {:>8.2}",
        "stop+remove",
        median(&crust.teardown),
        median(&ctrd.teardown),
        median(&crust.teardown) / median(&ctrd.teardown)
    );
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "crustd RSS (anon) idle fresh {:.1} ({:.1}) MB (target <= 10), idle after a pull {:.1} ({:.1}) MB, with 10 pods {:.1} ({:.1}) MB; containerd idle {:.1} MB",
        mb(fresh),
        mb(fresh_anon),
        mb(idle),
        mb(idle_anon),
        mb(with10),
        mb(with10_anon),
        mb(c_idle)
    );
    Ok(())
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
