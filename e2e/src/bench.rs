//! Shared pieces of the benchmarks (`e2e/src/bin/bench_*.rs`): medians, the load average
//! printed next to every figure (the machine is shared), per-sample data files and the
//! gnuplot PNGs made from them, a private crustd with the benchmark's own cgroup
//! parent and directories, the registry with the benchmark images, and the host-network
//! pod every pod benchmark starts (containerd without CNI cannot make pod networks).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1 as cri;

use crate::cgroup::CgroupRoot;
use crate::daemon::Crustd;

/// Median in milliseconds (0 for no samples).
pub fn median_ms(v: &[Duration]) -> f64 {
    percentile_ms(v, 0.5)
}

/// The `q` quantile (nearest rank) in milliseconds (0 for no samples).
pub fn percentile_ms(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1e3
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
pub fn loadavg() -> [f64; 3] {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// The 1-minute load average sampled during a run: min, median, max.
#[derive(Debug, Default, Clone)]
pub struct Load(Vec<f64>);

impl Load {
    /// Takes a sample now.
    pub fn sample(&mut self) {
        self.0.push(loadavg()[0]);
    }

    /// `load 1-min min/median/max a/b/c` (or the current value if nothing was sampled).
    pub fn summary(&self) -> String {
        let mut v = if self.0.is_empty() {
            vec![loadavg()[0]]
        } else {
            self.0.clone()
        };
        v.sort_by(f64::total_cmp);
        format!(
            "load(1m) {:.1}/{:.1}/{:.1}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        )
    }
}

/// Where the benchmarks write data files and plots: `$BENCH_OUT`, else
/// `<target>/bench-out` (created).
pub fn out_dir() -> PathBuf {
    let d = std::env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target"))
                .join("bench-out")
        });
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Writes `rows` (whitespace-separated columns, one row a line) under `header` to `path`.
pub fn write_dat(path: &Path, header: &str, rows: &[String]) -> std::io::Result<()> {
    let mut s = format!("# {header}\n");
    for r in rows {
        let _ = writeln!(s, "{r}");
    }
    std::fs::write(path, s)
}

/// Runs gnuplot on `script` (which writes its own PNG); says so if gnuplot is missing.
pub fn gnuplot(script: &str, png: &Path) {
    let dir = out_dir();
    let file = dir.join(format!(
        "{}.gp",
        png.file_stem().unwrap_or_default().to_string_lossy()
    ));
    if std::fs::write(&file, script).is_err() {
        return;
    }
    match std::process::Command::new("gnuplot").arg(&file).status() {
        Ok(s) if s.success() => println!("plot: {}", png.display()),
        Ok(s) => println!("plot: gnuplot {} exited with {s}", file.display()),
        Err(_) => println!(
            "plot: gnuplot not installed (apt-get install gnuplot-nox); script {}",
            file.display()
        ),
    }
}

/// The gnuplot header of a PNG `png` of `w`x`h` pixels.
pub fn png_header(png: &Path, w: u32, h: u32) -> String {
    format!(
        "set terminal pngcairo size {w},{h} noenhanced font ',9'\nset output '{}'\nset grid\nset key top left\n",
        png.display()
    )
}

/// A crustd for a benchmark: its directory under `parent`, its cgroup parent
/// `/cp-bench-<pid>-<n>` (removed when this is dropped, after crustd is killed).
pub struct BenchCrustd {
    /// The daemon.
    pub d: Crustd,
    _cgroup: CgroupRoot,
}

impl BenchCrustd {
    /// Starts `bin` with `config` (TOML without a `[runtime]` table) under `parent`,
    /// logging at `level` (`--log-level`).
    pub fn start_level(bin: &Path, config: &str, parent: &Path, level: &str) -> Self {
        let cg = CgroupRoot::unique("cp-bench");
        let config = format!("{config}\n[runtime]\ncgroup_root = \"{}\"\n", cg.path());
        let d = Crustd::start_bin_env_level(bin, &config, parent, &[], Some(level));
        Self { d, _cgroup: cg }
    }
}

impl Drop for BenchCrustd {
    fn drop(&mut self) {
        self.d.kill9();
        // `_cgroup` is dropped after this: the tree is removed once crustd is gone.
    }
}

/// The `key` value (kB) of `/proc/<pid>/status` (0 if unreadable).
pub fn status_kb(pid: u32, key: &str) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    st.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The processes whose parent is `ppid`: every pid in `/proc/*/stat` whose field 4 is `ppid`.
pub fn pids_with_parent(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) == Some(ppid) {
            out.push(pid);
        }
    }
    out
}

/// An image whose default command is `cmd` (busybox otherwise).
pub fn image_with_cmd(cmd: &[&str]) -> crate::image::Image {
    let mut img = crate::image::busybox();
    let mut cfg: serde_json::Value = serde_json::from_slice(&img.config).expect("config");
    cfg["config"]["Cmd"] = serde_json::json!(cmd);
    let config = serde_json::to_vec(&cfg).expect("config");
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest).expect("manifest");
    manifest["config"]["digest"] = serde_json::json!(crate::image::digest(&config));
    manifest["config"]["size"] = serde_json::json!(config.len());
    img.manifest = serde_json::to_vec(&manifest).expect("manifest");
    img.id = crate::image::digest(&config);
    img.manifest_digest = crate::image::digest(&img.manifest);
    img.blobs[0] = (img.id.clone(), config.clone());
    img.config = config;
    img
}

/// The crustd the benchmarks run: `CRUSTD` (the `bench/*.sh` scripts point it at the
/// installed build), else the workspace's debug build.
pub fn crustd_bin() -> PathBuf {
    std::env::var_os("CRUSTD")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_bin("crust-cri", "crustd"))
}

/// A local registry serving the benchmark images: busybox (command `sh`) and a pause
/// image (busybox sleeping) for containerd's sandboxes.
pub struct BenchImages {
    /// The registry (stops when dropped).
    pub reg: crate::registry::Registry,
    /// `<registry>/bench/busybox:1`.
    pub busybox: String,
    /// `<registry>/bench/pause:1`.
    pub pause: String,
}

impl BenchImages {
    /// Starts the registry and pushes both images.
    pub async fn push() -> Self {
        let reg = crate::registry::Registry::start();
        let img = image_with_cmd(&["/bin/sh"]);
        crate::image::push(&reg.host(), "bench/busybox", "1", &img, None).await;
        let pause = image_with_cmd(&["/bin/sleep", "2147483647"]);
        crate::image::push(&reg.host(), "bench/pause", "1", &pause, None).await;
        let (busybox, pause) = (
            format!("{}/bench/busybox:1", reg.host()),
            format!("{}/bench/pause:1", reg.host()),
        );
        Self {
            reg,
            busybox,
            pause,
        }
    }
}

/// The benchmarks' pod: host network (kubelet sends no hostname then), a PID namespace
/// per container, the pod's own IPC namespace; logs under `logs`.
pub fn host_pod(name: &str, logs: &Path) -> cri::PodSandboxConfig {
    let mut p = crate::pods::pod_config(name, logs.to_str().unwrap_or("/tmp"));
    p.hostname = String::new();
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

/// RunPodSandbox of [`host_pod`] `name`, then CreateContainer and StartContainer of `img`
/// sleeping; returns (pod id, container id).
pub async fn start_host_pod(
    rt: &mut crate::pods::Runtime,
    name: &str,
    img: &str,
    logs: &Path,
) -> anyhow::Result<(String, String)> {
    use anyhow::Context as _;
    let pc = host_pod(name, logs);
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pc.clone()),
            runtime_handler: String::new(),
        })
        .await
        .context("RunPodSandbox")?
        .into_inner()
        .pod_sandbox_id;
    let ctr = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(crate::pods::container_config(
                "app",
                img,
                &["/bin/sleep", "100000"],
            )),
            sandbox_config: Some(pc),
        })
        .await
        .context("CreateContainer")?
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .context("StartContainer")?;
    Ok((pod, ctr))
}
