//! The CRI RuntimeService client as kubelet drives it, plus pod/container config
//! builders and a busybox image in a local registry.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

/// RuntimeService client.
pub type Runtime = RuntimeServiceClient<Channel>;

/// A pod config named `name` with logs under `log_dir`.
pub fn pod_config(name: &str, log_dir: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.into(),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.0.0.10".into()],
            searches: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

/// A container config running `cmd` from `image`, logging to `<name>.log`.
pub fn container_config(name: &str, image: &str, cmd: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources::default()),
            security_context: Some(cri::LinuxContainerSecurityContext::default()),
        }),
        ..Default::default()
    }
}

/// RunPodSandbox.
pub async fn run_pod(
    rt: &mut Runtime,
    cfg: &cri::PodSandboxConfig,
) -> Result<String, tonic::Status> {
    Ok(rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id)
}

/// CreateContainer + StartContainer.
pub async fn run_container(
    rt: &mut Runtime,
    pod: &str,
    pod_cfg: &cri::PodSandboxConfig,
    cfg: cri::ContainerConfig,
) -> Result<String, tonic::Status> {
    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cfg),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await?;
    Ok(id)
}

/// A pod named `name` (its logs under `logs`) running one container named `container`
/// of `image` with `cmd`: RunPodSandbox, CreateContainer, StartContainer. Returns
/// (pod id, container id); panics with crustd's answer if a call fails.
pub async fn pod_with_container(
    rt: &mut Runtime,
    name: &str,
    logs: &std::path::Path,
    image: &str,
    container: &str,
    cmd: &[&str],
) -> (String, String) {
    let pc = pod_config(name, logs.to_str().expect("utf-8 log dir"));
    let pod = run_pod(rt, &pc).await.expect("RunPodSandbox");
    let c = run_container(rt, &pod, &pc, container_config(container, image, cmd))
        .await
        .expect("CreateContainer + StartContainer");
    (pod, c)
}

/// ContainerStatus.
pub async fn status(rt: &mut Runtime, id: &str) -> cri::ContainerStatus {
    rt.container_status(cri::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .expect("ContainerStatus")
    .into_inner()
    .status
    .expect("status")
}

/// Polls until container `id` has exited; returns its status.
pub async fn wait_exited(rt: &mut Runtime, id: &str) -> cri::ContainerStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = status(rt, id).await;
        if s.state == cri::ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "container {id} did not exit: {s:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// StopPodSandbox + RemovePodSandbox.
pub async fn remove_pod(rt: &mut Runtime, id: &str) {
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .expect("RemovePodSandbox");
}

/// crustd config for runtime tests: network off (loopback pods), the OCI runtime from
/// `CRUST_E2E_RUNTIME` and the cgroup driver from `CRUST_E2E_CGROUP_DRIVER` if set (the VM
/// suite, e2e/vm, runs the tests once per driver).
pub fn config() -> String {
    let mut c = String::from("[network]\nenabled = false\n[runtime]\n");
    if let Ok(r) = std::env::var("CRUST_E2E_RUNTIME") {
        c.push_str(&format!("runtime = \"{r}\"\n"));
    }
    if let Ok(d) = std::env::var("CRUST_E2E_CGROUP_DRIVER") {
        c.push_str(&format!("cgroup_driver = \"{d}\"\n"));
    }
    c
}

/// A registry with busybox pushed, a crustd (network off) that pulled it, a RuntimeService
/// client, the image name and a log dir. Shim and runtime are built next to crustd.
pub async fn setup() -> (
    crate::registry::Registry,
    crate::daemon::Crustd,
    Runtime,
    String,
    tempfile::TempDir,
    Leftovers,
) {
    setup_with(&config()).await
}

/// [`setup`] with crustd started on `config` (TOML).
pub async fn setup_with(
    config: &str,
) -> (
    crate::registry::Registry,
    crate::daemon::Crustd,
    Runtime,
    String,
    tempfile::TempDir,
    Leftovers,
) {
    use crate::image;
    crate::workspace_bin("crust-shim", "crust-shim");
    crate::workspace_bin("crust-runc", "crust-runc");
    let reg = crate::registry::Registry::start();
    let img = image::busybox();
    image::push(&reg.host(), "test/busybox", "v1", &img, None).await;
    let d = crate::daemon::Crustd::start(config);
    let name = format!("{}/test/busybox:v1", reg.host());
    crate::cri::Images::new(d.channel().await)
        .pull(&name, None)
        .await
        .expect("pull");
    let rt = Runtime::new(d.channel().await);
    let logs = tempfile::tempdir().expect("log dir");
    let g = Leftovers(d.dir.path().to_path_buf());
    (reg, d, rt, name, logs, g)
}

/// Removes what a failed test left behind a crustd directory (crustd itself leaves pods
/// running by design): container processes, shims, mounts, container cgroups. Declared last so it
/// drops before the crustd and its directory.
pub struct Leftovers(pub std::path::PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let dir = self.0.display().to_string();
        // cgroup v2 (one hierarchy at /sys/fs/cgroup) or v1/hybrid (one per controller).
        let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let memory = if v2 { "" } else { "/memory" };
        let mut cgroups = Vec::new();
        for e in std::fs::read_dir(self.0.join("state/bundles"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let spec: serde_json::Value = std::fs::read(e.path().join("config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            if let Some(cg) = spec["linux"]["cgroupsPath"].as_str() {
                // systemd driver: `slice:prefix:name`, a scope systemd removes once empty.
                let scope = cg.split(':').collect::<Vec<_>>();
                let (cg, systemd) = match scope[..] {
                    [slice, prefix, name] => (
                        format!(
                            "{}/{prefix}-{name}.scope",
                            crust_cgroups::slice_path(slice).unwrap_or_default()
                        ),
                        true,
                    ),
                    _ => (cg.to_string(), false),
                };
                let procs = format!("/sys/fs/cgroup{memory}{cg}/cgroup.procs");
                for pid in std::fs::read_to_string(procs).unwrap_or_default().lines() {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                if !systemd {
                    cgroups.push(cg);
                }
            }
        }
        let shims = format!("{dir}/state/shims");
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            // Shims, and pod inits (`crustd --pod-init <pod> <state>`) of shared PID pods.
            if cmd.contains(&shims) || (cmd.contains("--pod-init") && cmd.contains(&dir)) {
                if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&dir))
            .collect();
        mounts.sort();
        for m in mounts.iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        // The containers' cgroups; their parents go with the crustd's own cgroup root
        // (crate::cgroup::CgroupRoot) when the crustd drops.
        for cg in cgroups {
            let parent = std::path::Path::new(&cg)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let hierarchies: Vec<std::path::PathBuf> = if v2 {
                vec!["/sys/fs/cgroup".into()]
            } else {
                std::fs::read_dir("/sys/fs/cgroup")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .collect()
            };
            for h in hierarchies {
                let _ = std::fs::remove_dir(h.join(cg.trim_start_matches('/')));
                // `<cgroup root>/<pod id>` under whatever root the test configured (only
                // empty directories go).
                if parent.trim_matches('/').contains('/') {
                    // A shared-PID pod's init leaf, `<pod cgroup>/<pod id>`.
                    if let Some(pod) = parent.rsplit('/').next() {
                        let leaf = format!("{}/{pod}", parent.trim_start_matches('/'));
                        let _ = std::fs::remove_dir(h.join(leaf));
                    }
                    let _ = std::fs::remove_dir(h.join(parent.trim_start_matches('/')));
                }
            }
        }
    }
}

/// ExecSync returning (stdout, exit code).
pub async fn exec(rt: &mut Runtime, id: &str, script: &str) -> (String, i32) {
    let r = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout: 20,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    (String::from_utf8_lossy(&r.stdout).into_owned(), r.exit_code)
}
