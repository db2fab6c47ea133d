//! What the cgroup v2 tests (`tests/vm_*.rs`, run in the systemd + cgroup v2 guest of
//! e2e/vm) read on a real node: whether the host is v2 only, which cgroup driver crustd
//! runs with, a container's cgroup directory, cgroup files and systemd unit properties;
//! and [`V2Pod`], the per-test set-up (crustd with the driver under test, one pod).

use std::path::Path;

use k8s_cri::v1 as kc;

use crate::daemon::Crustd;
use crate::pods::{self, Leftovers, Runtime};
use crate::registry::Registry;

/// Whether the tests can run here: cgroup v2 only (else prints why not).
pub fn v2_only() -> bool {
    let ok = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !ok {
        eprintln!("skipped: needs a pure cgroup v2 host (the VM suite, e2e/vm/run.sh)");
    }
    ok
}

/// Whether crustd runs with the systemd cgroup driver (`CRUST_E2E_CGROUP_DRIVER`).
pub fn systemd_driver() -> bool {
    std::env::var("CRUST_E2E_CGROUP_DRIVER").as_deref() == Ok("systemd")
}

/// The `linux.cgroupsPath` of container `id`, from its bundle's config.json: a path
/// (cgroupfs) or `slice:prefix:name` (systemd).
pub fn cgroups_path(d: &Crustd, id: &str) -> String {
    let path = d.state().join("bundles").join(id).join("config.json");
    let spec = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec: serde_json::Value = serde_json::from_slice(&spec).expect("config.json is JSON");
    spec["linux"]["cgroupsPath"]
        .as_str()
        .expect("cgroupsPath")
        .to_string()
}

/// The cgroup directory of container `id` under /sys/fs/cgroup (the scope's, with the
/// systemd driver).
pub fn container_dir(d: &Crustd, id: &str) -> String {
    let cg = cgroups_path(d, id);
    match cg.split(':').collect::<Vec<_>>()[..] {
        [slice, prefix, name] => format!(
            "/sys/fs/cgroup{}/{prefix}-{name}.scope",
            crust_cgroups::slice_path(slice).expect("a slice")
        ),
        _ => format!("/sys/fs/cgroup{cg}"),
    }
}

/// `dir/file`, trimmed; panics naming the file if it cannot be read.
pub fn read(dir: &str, file: &str) -> String {
    std::fs::read_to_string(format!("{dir}/{file}"))
        .unwrap_or_else(|e| panic!("{dir}/{file}: {e}"))
        .trim()
        .to_string()
}

/// The value of `key` in a flat-keyed cgroup file's `text` (`cpu.stat`, `memory.events`).
pub fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// `systemctl <args>`: (exit success, stdout).
pub fn systemctl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("systemctl")
        .args(args)
        .arg("--no-pager")
        .output()
        .expect("run systemctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `systemctl show -p prop --value unit`.
pub fn unit_prop(unit: &str, prop: &str) -> String {
    systemctl(&["show", "-p", prop, "--value", unit])
        .1
        .trim()
        .to_string()
}

/// A crustd on the driver under test (the busybox image pulled) with one pod named
/// `name`. Fields drop in order: leftovers first, then the client, crustd, the registry.
pub struct V2Pod {
    _leftovers: Leftovers,
    /// RuntimeService client.
    pub rt: Runtime,
    /// The pod's sandbox config.
    pub pc: kc::PodSandboxConfig,
    /// The pod's id.
    pub pod: String,
    /// The pulled busybox image.
    pub img: String,
    /// The pods' log directory.
    pub logs: tempfile::TempDir,
    /// The daemon.
    pub d: Crustd,
    _reg: Registry,
}

impl V2Pod {
    /// Starts crustd and runs pod `name` (edited by `edit` first); None (with the reason
    /// printed) unless root on a cgroup v2-only host.
    pub async fn start(name: &str, edit: impl FnOnce(&mut kc::PodSandboxConfig)) -> Option<V2Pod> {
        if !crate::is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        if !v2_only() {
            return None;
        }
        let (reg, d, mut rt, img, logs, g) = pods::setup().await;
        let mut pc = pods::pod_config(name, logs.path().to_str().expect("utf-8 log dir"));
        edit(&mut pc);
        let pod = pods::run_pod(&mut rt, &pc)
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", d.log()));
        Some(V2Pod {
            _leftovers: g,
            rt,
            pc,
            pod,
            img,
            logs,
            d,
            _reg: reg,
        })
    }

    /// Creates and starts a container of `cfg` in the pod; panics with crustd's log if
    /// either call fails.
    pub async fn run(&mut self, cfg: kc::ContainerConfig) -> String {
        pods::run_container(&mut self.rt, &self.pod, &self.pc, cfg)
            .await
            .unwrap_or_else(|e| panic!("CreateContainer + StartContainer: {e}\n{}", self.d.log()))
    }

    /// A container config `name` of the busybox image running `cmd`, its resources set
    /// to `resources`.
    pub fn container(
        &self,
        name: &str,
        cmd: &[&str],
        resources: kc::LinuxContainerResources,
    ) -> kc::ContainerConfig {
        let mut cfg = pods::container_config(name, &self.img, cmd);
        if let Some(l) = cfg.linux.as_mut() {
            l.resources = Some(resources);
        }
        cfg
    }

    /// Stops and removes the pod.
    pub async fn remove(mut self) {
        pods::remove_pod(&mut self.rt, &self.pod).await;
    }
}
