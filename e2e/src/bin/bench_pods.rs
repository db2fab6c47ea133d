//! Pod start benchmark: the same pod (RunPodSandbox + CreateContainer + StartContainer of a
//! busybox `sleep`, image already present, then stop and remove) N times through crustd
//! (crust-shim + crust-runc) and, side by side with the same Rust CRI client, through a
//! private Debian containerd (CRI plugin, runc, `restrict_oom_score_adj = true`, a local
//! pause image). Pods use the host network on both sides (pod networking is benchmarked
//! by the network issue). Prints per-phase medians and ratios, and crustd's RSS idle and
//! with 10 pods. Run via `bench/pods.sh`.
//!
//! Usage: `bench_pods [RUNS]` (default 20). Needs root, docker-registry and containerd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crust_e2e::daemon::Crustd;
use crust_e2e::image::{self, busybox_layer, Compression, Flavour};
use crust_e2e::pods::{container_config, pod_config, Runtime};
use crust_e2e::registry::Registry;
use k8s_cri::v1 as cri;

/// An image whose default command is `cmd` (busybox otherwise).
fn image_with_cmd(cmd: &[&str]) -> image::Image {
    let mut img = image::build(
        &[busybox_layer()],
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    let mut cfg: serde_json::Value = serde_json::from_slice(&img.config).expect("config");
    cfg["config"]["Cmd"] = serde_json::json!(cmd);
    let config = serde_json::to_vec(&cfg).expect("config");
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest).expect("manifest");
    manifest["config"]["digest"] = serde_json::json!(image::digest(&config));
    manifest["config"]["size"] = serde_json::json!(config.len());
    img.manifest = serde_json::to_vec(&manifest).expect("manifest");
    img.id = image::digest(&config);
    img.manifest_digest = image::digest(&img.manifest);
    img.blobs[0] = (img.id.clone(), config.clone());
    img.config = config;
    img
}

struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start(registry: &str, pause: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let hosts = d.join("certs.d").join(registry);
        std::fs::create_dir_all(&hosts)?;
        std::fs::write(
            hosts.join("hosts.toml"),
            format!("server = \"http://{registry}\"\n\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
        )?;
        let cfg = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  disable_apparmor = true
  sandbox_image = "{pause}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("containerd.sock").display(),
            opt = d.join("opt").display(),
            certs = d.join("certs.d").display(),
        );
        std::fs::write(d.join("config.toml"), cfg)?;
        let log = std::fs::File::create(d.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("start containerd")?;
        let me = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(me.socket()).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "containerd did not start: {}",
                    std::fs::read_to_string(me.dir.path().join("containerd.log"))?
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
    }
}

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

fn median(v: &[Duration]) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// VmRSS in kB of the process listening on (whose command line names) `socket`.
fn rss_of(socket: &Path, exe: &str) -> u64 {
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
            if let Some(v) = st.lines().find_map(|l| l.strip_prefix("VmRSS:")) {
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
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let crustd = std::env::var_os("CRUSTD")
        .map(PathBuf::from)
        .unwrap_or_else(|| crust_e2e::workspace_bin("crust-cri", "crustd"));
    let reg = Registry::start();
    let img = image_with_cmd(&["/bin/sh"]);
    image::push(&reg.host(), "bench/busybox", "1", &img, None).await;
    let pause = image_with_cmd(&["/bin/sleep", "2147483647"]);
    image::push(&reg.host(), "bench/pause", "1", &pause, None).await;
    let name = format!("{}/bench/busybox:1", reg.host());
    let pause_name = format!("{}/bench/pause:1", reg.host());

    // crustd.
    let d = Crustd::start_bin(&crustd, "[network]\nenabled = false\n");
    crust_e2e::cri::Images::new(d.channel().await)
        .pull(&name, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_of(&d.socket(), "crustd");
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
    for p in pods {
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: p })
            .await?;
    }
    drop(d);

    // containerd.
    let c = Containerd::start(&reg.host(), &pause_name)?;
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
        eprintln!(
            "containerd failed: {e:#}\n{}",
            std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
        );
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
    println!(
        "crustd RSS idle {:.1} MB (target <= 10), with 10 pods {:.1} MB; containerd idle {:.1} MB",
        idle as f64 / 1024.0,
        with10 as f64 / 1024.0,
        c_idle as f64 / 1024.0
    );
    Ok(())
}
