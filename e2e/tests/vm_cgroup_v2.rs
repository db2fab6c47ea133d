//! cgroup v2 through crustd on a real node (the VM suite, e2e/vm, runs them in a Debian 12
//! guest with systemd as PID 1, once per cgroup driver from `CRUST_E2E_CGROUP_DRIVER`):
//! where the systemd driver puts pods, pod inits, shims and containers (checked with
//! systemctl), OOM kills reported as OOMKilled, container resources as the cgroup files
//! show them, and ContainerStats / PodSandboxStats against the cgroup files.
//!
//! Skipped (with the reason printed) on hosts without a pure cgroup v2 hierarchy, and the
//! systemd test without the systemd driver.

use std::collections::HashMap;
use std::path::Path;

use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{self, container_config, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// Whether the tests can run here: pure cgroup v2 (else prints why not).
fn v2_only() -> bool {
    let ok = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !ok {
        eprintln!("skipped: needs a pure cgroup v2 host (the VM suite, e2e/vm/run.sh)");
    }
    ok
}

fn systemd_driver() -> bool {
    std::env::var("CRUST_E2E_CGROUP_DRIVER").as_deref() == Ok("systemd")
}

/// The cgroup directory of container `id` (under /sys/fs/cgroup), from its bundle's
/// `linux.cgroupsPath`: a path (cgroupfs) or `slice:prefix:name` (systemd).
fn container_dir(d: &Crustd, id: &str) -> String {
    let spec = std::fs::read(
        d.dir
            .path()
            .join("state/bundles")
            .join(id)
            .join("config.json"),
    )
    .expect("bundle config.json");
    let spec: serde_json::Value = serde_json::from_slice(&spec).expect("config.json is JSON");
    let cg = spec["linux"]["cgroupsPath"].as_str().expect("cgroupsPath");
    match cg.split(':').collect::<Vec<_>>()[..] {
        [slice, prefix, name] => format!(
            "/sys/fs/cgroup{}/{prefix}-{name}.scope",
            crust_cgroups::slice_path(slice).expect("a slice")
        ),
        _ => format!("/sys/fs/cgroup{cg}"),
    }
}

fn read(dir: &str, file: &str) -> String {
    std::fs::read_to_string(format!("{dir}/{file}"))
        .unwrap_or_else(|e| panic!("{dir}/{file}: {e}"))
        .trim()
        .to_string()
}

fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// `systemctl <args>`: (exit success, stdout).
fn systemctl(args: &[&str]) -> (bool, String) {
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

fn unit_prop(unit: &str, prop: &str) -> String {
    systemctl(&["show", "-p", prop, "--value", unit])
        .1
        .trim()
        .to_string()
}

/// A pod whose containers share its PID namespace (so it has a pod init).
fn shared_pid(mut pc: kc::PodSandboxConfig) -> kc::PodSandboxConfig {
    pc.linux = Some(kc::LinuxPodSandboxConfig {
        security_context: Some(kc::LinuxSandboxSecurityContext {
            namespace_options: Some(kc::NamespaceOption {
                pid: kc::NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    pc
}

/// With the systemd driver, as kubelet runs it: the pod in the slice kubelet names,
/// `kubepods-burstable-pod<uid>.slice`, sent as kubelet sends it, expanded to its path
/// `/kubepods.slice/kubepods-burstable.slice/…` (kubelet 1.32's pods all failed before), the
/// container the scope `crust-<id>.scope` in it (what `systemctl status` shows), the pod
/// init `crust-<pod id>.scope` beside it, the shim `crust-shim-<pod id>.scope` in
/// system.slice; RuntimeConfig answers SYSTEMD; removing the pod leaves no unit behind,
/// and a pod without a cgroup parent gets crustd's own slice, stopped with the pod.
#[tokio::test(flavor = "multi_thread")]
async fn systemd_driver_units() {
    require_root!();
    if !v2_only() {
        return;
    }
    if !systemd_driver() {
        eprintln!("skipped: runs with CRUST_E2E_CGROUP_DRIVER=systemd only");
        return;
    }
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let rc = rt
        .runtime_config(kc::RuntimeConfigRequest {})
        .await
        .expect("RuntimeConfig")
        .into_inner();
    assert_eq!(
        rc.linux.map(|l| l.cgroup_driver),
        Some(kc::CgroupDriver::Systemd as i32)
    );

    let slice = format!("kubepods-burstable-pod{}_e2e.slice", std::process::id());
    let slice_dir = format!("/kubepods.slice/kubepods-burstable.slice/{slice}");
    let mut pc = shared_pid(pod_config("sd", logs.path().to_str().unwrap()));
    if let Some(l) = pc.linux.as_mut() {
        // What kubelet's systemd cgroup manager sends: the slice expanded to its path.
        l.cgroup_parent = slice_dir.clone();
    }
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    // kubelet sends a hugetlb limit (0) for every page size the node has; systemd does not
    // enable hugetlb in the slices it makes (kubelet 1.32's containers all failed here).
    let mut cc = container_config("sleeper", &img, &["/bin/sleep", "1000"]);
    cc.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
        .hugepage_limits = vec![kc::HugepageLimit {
        page_size: "2MB".into(),
        limit: 0,
    }];
    let c = pods::run_container(&mut rt, &pod, &pc, cc)
        .await
        .expect("create+start");
    let scope = format!("crust-{c}.scope");
    let (ok, status) = systemctl(&["status", &scope]);
    println!("systemctl status {scope}:\n{status}");
    assert!(ok, "{status}\n{}", d.log());
    assert!(status.contains("Active: active (running)"), "{status}");
    assert!(
        status.contains(&format!("CGroup: {slice_dir}/{scope}")),
        "{status}"
    );
    assert_eq!(unit_prop(&scope, "Slice"), slice);
    assert_eq!(unit_prop(&scope, "Delegate"), "yes");
    let pid = pods::status(&mut rt, &c).await;
    assert_eq!(pid.state, kc::ContainerState::ContainerRunning as i32);
    let procs = read(
        &format!("/sys/fs/cgroup{slice_dir}/{scope}"),
        "cgroup.procs",
    );
    assert!(!procs.is_empty(), "no process in the container's scope");
    assert_eq!(
        read(
            &format!("/sys/fs/cgroup{slice_dir}/{scope}"),
            "hugetlb.2MB.max"
        )
        .trim(),
        "0"
    );

    let init_scope = format!("crust-{pod}.scope");
    assert_eq!(unit_prop(&init_scope, "Slice"), slice, "pod init scope");
    assert_eq!(unit_prop(&init_scope, "ActiveState"), "active");
    let init_procs = read(
        &format!("/sys/fs/cgroup{slice_dir}/{init_scope}"),
        "cgroup.procs",
    );
    assert_eq!(
        init_procs.lines().count(),
        1,
        "the pod init alone: {init_procs}"
    );
    let shim_scope = format!("crust-shim-{pod}.scope");
    assert_eq!(
        unit_prop(&shim_scope, "Slice"),
        "system.slice",
        "shim scope"
    );
    assert_eq!(unit_prop(&shim_scope, "ActiveState"), "active");
    assert!(!read(
        &format!("/sys/fs/cgroup/system.slice/{shim_scope}"),
        "cgroup.procs"
    )
    .is_empty());

    pods::remove_pod(&mut rt, &pod).await;
    for u in [&scope, &init_scope, &shim_scope] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while unit_prop(u, "ActiveState") == "active" {
            assert!(std::time::Instant::now() < deadline, "{u} still active");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert!(!Path::new(&format!("/sys/fs/cgroup{slice_dir}/{scope}")).exists());
    // kubelet owns the pod's slice; this test stands in for it.
    systemctl(&["stop", &slice]);

    // No cgroup parent: crustd's own slice below its cgroup_root, gone with the pod.
    let pc = pod_config("own", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("sleeper", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("create+start");
    let root = d.cgroup_root();
    let own = format!("{}-pod{pod}.slice", root.trim_end_matches(".slice"));
    assert_eq!(unit_prop(&format!("crust-{c}.scope"), "Slice"), own);
    assert_eq!(unit_prop(&own, "ActiveState"), "active");
    pods::remove_pod(&mut rt, &pod).await;
    assert_ne!(unit_prop(&own, "ActiveState"), "active", "{own} left");
}

/// A container that exceeds its memory limit is OOM-killed and reported OOMKilled (with
/// the systemd driver the scope may be gone before its memory.events is read: crustd then
/// goes by the pod's cgroup); one killed by SIGKILL otherwise is not.
#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_exceeded_is_oom_killed() {
    require_root!();
    if !v2_only() {
        return;
    }
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("oom", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    for n in 0..1 {
        let mut cfg = container_config(
            &format!("oom{n}"),
            &img,
            &[
                "/bin/sh",
                "-c",
                "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
            ],
        );
        cfg.linux.as_mut().unwrap().resources = Some(kc::LinuxContainerResources {
            memory_limit_in_bytes: 16 << 20,
            ..Default::default()
        });
        let c = pods::run_container(&mut rt, &pod, &pc, cfg).await.unwrap();
        let s = pods::wait_exited(&mut rt, &c).await;
        assert_eq!(
            (s.exit_code, s.reason.as_str()),
            (137, "OOMKilled"),
            "run {n}: {s:?}\n{}",
            d.log()
        );
    }
    // A container killed otherwise is not OOMKilled.
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("killed", &img, &["/bin/sh", "-c", "kill -9 $$"]),
    )
    .await
    .unwrap();
    let s = pods::wait_exited(&mut rt, &c).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"), "{s:?}");
    pods::remove_pod(&mut rt, &pod).await;
}

/// CRI resources land in the container's cgroup v2 files: cpu.max, cpu.weight (runc's
/// shares conversion), memory.max, memory.swap.max (swap limit minus memory limit),
/// cpuset.cpus/mems, and unified keys (memory.high, pids.max, io.weight).
#[tokio::test(flavor = "multi_thread")]
async fn resources_are_in_the_cgroup_files() {
    require_root!();
    if !v2_only() {
        return;
    }
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("res", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let mut cfg = container_config("limited", &img, &["/bin/sleep", "1000"]);
    cfg.linux.as_mut().unwrap().resources = Some(kc::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 64 << 20,
        memory_swap_limit_in_bytes: 96 << 20,
        cpuset_cpus: "0".into(),
        cpuset_mems: "0".into(),
        unified: HashMap::from([
            ("memory.high".to_string(), (48u64 << 20).to_string()),
            ("pids.max".to_string(), "77".to_string()),
            ("io.weight".to_string(), "default 300".to_string()),
        ]),
        ..Default::default()
    });
    let c = pods::run_container(&mut rt, &pod, &pc, cfg)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
    let dir = container_dir(&d, &c);
    let want = [
        ("cpu.max", "50000 100000".to_string()),
        // runc: 1 + ((shares - 2) * 9999) / 262142
        ("cpu.weight", (1 + ((512 - 2) * 9999) / 262_142).to_string()),
        ("memory.max", (64u64 << 20).to_string()),
        ("memory.swap.max", (32u64 << 20).to_string()),
        ("memory.high", (48u64 << 20).to_string()),
        ("pids.max", "77".to_string()),
        ("cpuset.cpus", "0".to_string()),
        ("cpuset.mems", "0".to_string()),
        ("io.weight", "default 300".to_string()),
    ];
    for (file, value) in want {
        assert_eq!(read(&dir, file), value, "{dir}/{file}");
    }
    // Update: new limits reach the files (the unit's properties too, with systemd).
    rt.update_container_resources(kc::UpdateContainerResourcesRequest {
        container_id: c.clone(),
        linux: Some(kc::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 20_000,
            memory_limit_in_bytes: 80 << 20,
            memory_swap_limit_in_bytes: 80 << 20,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}\n{}", d.log()));
    assert_eq!(read(&dir, "cpu.max"), "20000 100000");
    assert_eq!(read(&dir, "memory.max"), (80u64 << 20).to_string());
    assert_eq!(read(&dir, "memory.swap.max"), "0");
    if systemd_driver() {
        let scope = format!("crust-{c}.scope");
        assert_eq!(unit_prop(&scope, "MemoryMax"), (80u64 << 20).to_string());
        assert_eq!(unit_prop(&scope, "CPUQuotaPerSecUSec"), "200ms");
    }
    pods::remove_pod(&mut rt, &pod).await;
}

/// ContainerStats and PodSandboxStats report what the cgroup files say: memory usage and
/// working set, CPU time (between two reads of cpu.stat around the call).
#[tokio::test(flavor = "multi_thread")]
async fn stats_match_the_cgroup_files() {
    require_root!();
    if !v2_only() {
        return;
    }
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("stats", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "holder",
            &img,
            &[
                "/bin/sh",
                "-c",
                // The shell keeps 4 MB in a variable (so not `exec sleep`) and burns a
                // little CPU first.
                "x=$(head -c 4000000 /dev/zero | tr '\\0' a); i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; touch /tmp/ready; while true; do sleep 1000; done",
            ],
        ),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pods::exec(&mut rt, &c, "test -e /tmp/ready").await.1 != 0 {
        assert!(std::time::Instant::now() < deadline, "container not ready");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let dir = container_dir(&d, &c);
    let pod_dir = Path::new(&dir)
        .parent()
        .expect("pod cgroup")
        .display()
        .to_string();
    for (what, dir) in [("container", &dir), ("pod", &pod_dir)] {
        let cpu_before = keyed(&read(dir, "cpu.stat"), "usage_usec") * 1000;
        let mem_before = read(dir, "memory.current").parse::<u64>().unwrap();
        let (cpu, mem) = if what == "container" {
            let s = rt
                .container_stats(kc::ContainerStatsRequest {
                    container_id: c.clone(),
                })
                .await
                .expect("ContainerStats")
                .into_inner()
                .stats
                .expect("stats");
            (s.cpu.expect("cpu"), s.memory.expect("memory"))
        } else {
            let s = rt
                .pod_sandbox_stats(kc::PodSandboxStatsRequest {
                    pod_sandbox_id: pod.clone(),
                })
                .await
                .expect("PodSandboxStats")
                .into_inner()
                .stats
                .and_then(|s| s.linux)
                .expect("linux stats");
            (s.cpu.expect("cpu"), s.memory.expect("memory"))
        };
        let cpu_after = keyed(&read(dir, "cpu.stat"), "usage_usec") * 1000 + 999;
        let mem_after = read(dir, "memory.current").parse::<u64>().unwrap();
        let inactive_file = keyed(&read(dir, "memory.stat"), "inactive_file");
        let usage = mem.usage_bytes.map(|v| v.value).unwrap_or_default();
        let ws = mem.working_set_bytes.map(|v| v.value).unwrap_or_default();
        let ns = cpu
            .usage_core_nano_seconds
            .map(|v| v.value)
            .unwrap_or_default();
        println!(
            "{what}: cpu {ns} ns (files {cpu_before}..{cpu_after}), memory {usage} (files {mem_before}..{mem_after}), working set {ws}"
        );
        assert!(
            (cpu_before..=cpu_after).contains(&ns),
            "{what} cpu {ns} not in {cpu_before}..{cpu_after}"
        );
        // Memory moves a little between reads (page cache, the shim's exec).
        let slack = 512 << 10;
        let (lo, hi) = (mem_before.min(mem_after), mem_before.max(mem_after));
        assert!(
            usage + slack >= lo && usage <= hi + slack,
            "{what} memory {usage} vs {mem_before}..{mem_after}"
        );
        assert!(
            usage >= 4_000_000,
            "{what}: the 4 MB the shell holds: {usage}"
        );
        assert!(
            ws <= usage && ws + inactive_file + slack >= usage,
            "{what}: working set {ws}, usage {usage}, inactive_file {inactive_file}"
        );
    }
    pods::remove_pod(&mut rt, &pod).await;
}
