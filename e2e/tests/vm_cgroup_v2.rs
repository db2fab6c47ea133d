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

use crust_e2e::node::{container_dir, keyed, read, systemctl, systemd_driver, unit_prop, V2Pod};
use crust_e2e::pods::{self, container_config, pod_config};
use k8s_cri::v1 as kc;

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
    if !systemd_driver() {
        eprintln!("skipped: runs with CRUST_E2E_CGROUP_DRIVER=systemd only");
        return;
    }
    let slice = format!("kubepods-burstable-pod{}_e2e.slice", std::process::id());
    let slice_dir = format!("/kubepods.slice/kubepods-burstable.slice/{slice}");
    let Some(mut v) = V2Pod::start("sd", |pc| {
        *pc = shared_pid(pc.clone());
        if let Some(l) = pc.linux.as_mut() {
            // What kubelet's systemd cgroup manager sends: the slice expanded to its path.
            l.cgroup_parent = slice_dir.clone();
        }
    })
    .await
    else {
        return;
    };
    let rc =
        v.rt.runtime_config(kc::RuntimeConfigRequest {})
            .await
            .expect("RuntimeConfig")
            .into_inner();
    assert_eq!(
        rc.linux.map(|l| l.cgroup_driver),
        Some(kc::CgroupDriver::Systemd as i32)
    );

    // kubelet sends a hugetlb limit (0) for every page size the node has; systemd does not
    // enable hugetlb in the slices it makes (kubelet 1.32's containers all failed here).
    let mut cc = container_config("sleeper", &v.img, &["/bin/sleep", "1000"]);
    cc.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
        .hugepage_limits = vec![kc::HugepageLimit {
        page_size: "2MB".into(),
        limit: 0,
    }];
    let c = v.run(cc).await;
    let pod = v.pod.clone();
    let scope = format!("crust-{c}.scope");
    let (ok, status) = systemctl(&["status", &scope]);
    println!("systemctl status {scope}:\n{status}");
    assert!(ok, "{status}\n{}", v.d.log());
    assert!(status.contains("Active: active (running)"), "{status}");
    assert!(
        status.contains(&format!("CGroup: {slice_dir}/{scope}")),
        "{status}"
    );
    assert_eq!(unit_prop(&scope, "Slice"), slice);
    assert_eq!(unit_prop(&scope, "Delegate"), "yes");
    let pid = pods::status(&mut v.rt, &c).await;
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

    pods::remove_pod(&mut v.rt, &pod).await;
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
    let pc = pod_config("own", v.logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut v.rt, &pc).await.expect("RunPodSandbox");
    let c = pods::run_container(
        &mut v.rt,
        &pod,
        &pc,
        container_config("sleeper", &v.img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("create+start");
    let root = v.d.cgroup_root();
    let own = format!("{}-pod{pod}.slice", root.trim_end_matches(".slice"));
    assert_eq!(unit_prop(&format!("crust-{c}.scope"), "Slice"), own);
    assert_eq!(unit_prop(&own, "ActiveState"), "active");
    pods::remove_pod(&mut v.rt, &pod).await;
    assert_ne!(unit_prop(&own, "ActiveState"), "active", "{own} left");
}

/// A container that exceeds its memory limit is OOM-killed and reported OOMKilled, from
/// its shim's TaskOOM (with the systemd driver its scope, and `memory.events` with it, is
/// gone when the exit is recorded); the CRI Stopped event already carries the reason, and
/// there is one. A sibling that was running during the OOM kill and then dies of a SIGKILL
/// of its own is not OOMKilled (crustd used to go by the pod's OOM count once the
/// container's scope was gone, and blamed it).
#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_exceeded_is_oom_killed() {
    let Some(mut v) = V2Pod::start("oom", |_| {}).await else {
        return;
    };
    let mut events =
        v.rt.get_container_events(kc::GetEventsRequest {})
            .await
            .expect("GetContainerEvents")
            .into_inner();
    let sibling = v
        .run(container_config(
            "sibling",
            &v.img,
            &[
                "/bin/sh",
                "-c",
                "until [ -e /tmp/go ]; do busybox usleep 100000; done; kill -9 $$",
            ],
        ))
        .await;
    let limited = kc::LinuxContainerResources {
        memory_limit_in_bytes: 16 << 20,
        ..Default::default()
    };
    let cmd = [
        "/bin/sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ];
    let c = v.run(v.container("oom", &cmd, limited)).await;
    let s = pods::wait_exited(&mut v.rt, &c).await;
    let log = v.d.log();
    assert_eq!(
        (s.exit_code, s.reason.as_str()),
        (137, "OOMKilled"),
        "{s:?}\n{log}"
    );
    let exited = log
        .lines()
        .find(|l| l.contains("container exited") && l.contains(&c))
        .unwrap_or_else(|| panic!("no exit logged for {c}:\n{log}"));
    assert!(
        exited.contains("TaskOOM"),
        "not from the shim's TaskOOM: {exited}"
    );
    let mut stopped = Vec::new();
    while let Ok(Ok(Some(e))) =
        tokio::time::timeout(std::time::Duration::from_secs(2), events.message()).await
    {
        if e.container_id == c
            && e.container_event_type == kc::ContainerEventType::ContainerStoppedEvent as i32
        {
            let st = e.containers_statuses.iter().find(|s| s.id == c).cloned();
            stopped.push(st.map(|s| s.reason).unwrap_or_default());
        }
    }
    assert_eq!(
        stopped,
        ["OOMKilled"],
        "Stopped events of the OOM-killed container"
    );

    // The sibling, SIGKILLed after the OOM kill, is not OOMKilled.
    let (_, code) = pods::exec(&mut v.rt, &sibling, "busybox touch /tmp/go").await;
    assert_eq!(code, 0);
    let s = pods::wait_exited(&mut v.rt, &sibling).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"), "{s:?}");
    v.remove().await;
}

/// CRI resources land in the container's cgroup v2 files: cpu.max, cpu.weight (runc's
/// shares conversion), memory.max, memory.swap.max (swap limit minus memory limit),
/// cpuset.cpus/mems, and unified keys (memory.high, pids.max, io.weight).
#[tokio::test(flavor = "multi_thread")]
async fn resources_are_in_the_cgroup_files() {
    let Some(mut v) = V2Pod::start("res", |_| {}).await else {
        return;
    };
    let res = kc::LinuxContainerResources {
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
    };
    let c = v
        .run(v.container("limited", &["/bin/sleep", "1000"], res))
        .await;
    let dir = container_dir(&v.d, &c);
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
    v.rt.update_container_resources(kc::UpdateContainerResourcesRequest {
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
    .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}\n{}", v.d.log()));
    assert_eq!(read(&dir, "cpu.max"), "20000 100000");
    assert_eq!(read(&dir, "memory.max"), (80u64 << 20).to_string());
    assert_eq!(read(&dir, "memory.swap.max"), "0");
    if systemd_driver() {
        let scope = format!("crust-{c}.scope");
        assert_eq!(unit_prop(&scope, "MemoryMax"), (80u64 << 20).to_string());
        assert_eq!(unit_prop(&scope, "CPUQuotaPerSecUSec"), "200ms");
    }
    v.remove().await;
}

/// ContainerStats and PodSandboxStats report what the cgroup files say: memory usage and
/// working set, CPU time (between two reads of cpu.stat around the call).
#[tokio::test(flavor = "multi_thread")]
async fn stats_match_the_cgroup_files() {
    let Some(mut v) = V2Pod::start("stats", |_| {}).await else {
        return;
    };
    let c = v
        .run(container_config(
            "holder",
            &v.img,
            &[
                "/bin/sh",
                "-c",
                // The shell keeps 4 MB in a variable (so not `exec sleep`) and burns a
                // little CPU first.
                "x=$(head -c 4000000 /dev/zero | tr '\\0' a); i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; touch /tmp/ready; while true; do sleep 1000; done",
            ],
        ))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pods::exec(&mut v.rt, &c, "test -e /tmp/ready").await.1 != 0 {
        assert!(std::time::Instant::now() < deadline, "container not ready");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let dir = container_dir(&v.d, &c);
    let pod_dir = Path::new(&dir)
        .parent()
        .expect("pod cgroup")
        .display()
        .to_string();
    for (what, dir) in [("container", &dir), ("pod", &pod_dir)] {
        let cpu_before = keyed(&read(dir, "cpu.stat"), "usage_usec") * 1000;
        let mem_before = read(dir, "memory.current").parse::<u64>().unwrap();
        let (cpu, mem) = if what == "container" {
            let s =
                v.rt.container_stats(kc::ContainerStatsRequest {
                    container_id: c.clone(),
                })
                .await
                .expect("ContainerStats")
                .into_inner()
                .stats
                .expect("stats");
            (s.cpu.expect("cpu"), s.memory.expect("memory"))
        } else {
            let s =
                v.rt.pod_sandbox_stats(kc::PodSandboxStatsRequest {
                    pod_sandbox_id: v.pod.clone(),
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
    v.remove().await;
}
