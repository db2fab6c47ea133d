//! Pod sandbox and daemon behaviour beyond the basic lifecycle: the pod's shim is
//! started by RunPodSandbox (lives with no containers until the first CreateContainer,
//! is reconnected after `kill -9 crustd`, launched again when it died, shut down by
//! StopPodSandbox/RemovePodSandbox; a shim no pod owns is stopped by recovery); privileged
//! containers get the host's devices; sd_notify. (CPU rates: `runtime_stats.rs`.)

use std::path::Path;
use std::time::{Duration, Instant};

use crust_e2e::pods::{self, container_config, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};

/// Pids of the shim daemons (`serve`) under `dir` whose command line holds `needle`.
fn shims(dir: &Path, needle: &str) -> Vec<i32> {
    let shims = format!("{}/state/shims", dir.display());
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        // Zombies have an empty command line.
        if cmd.contains(&shims) && cmd.contains(needle) && cmd.trim_end().ends_with(" serve") {
            v.push(pid);
        }
    }
    v
}

/// Waits until no shim matching `needle` is left.
fn wait_gone(dir: &Path, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if shims(dir, needle).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn shim_started_by_run_pod_sandbox() {
    require_root!();
    let (_reg, mut d, mut rt, img, logs, _g) = setup().await;
    let dir = d.dir.path().to_path_buf();
    let pc = pod_config("shimpod", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let first = shims(&dir, &pod);
    assert_eq!(first.len(), 1, "one shim per pod at RunPodSandbox");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(shims(&dir, &pod), first, "the idle shim stays up");

    // kill -9 crustd: the restarted crustd uses the same shim.
    d.kill9();
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("a", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("create+start after restart");
    assert_eq!(shims(&dir, &pod), first, "shim reconnected, not replaced");
    assert_eq!(pods::status(&mut rt, &c).await.state, 1, "running");

    // A second pod whose idle shim died gets a new one at CreateContainer.
    let pc2 = pod_config("shimpod2", logs.path().to_str().unwrap());
    let pod2 = pods::run_pod(&mut rt, &pc2).await.expect("RunPodSandbox 2");
    let old = shims(&dir, &pod2);
    assert_eq!(old.len(), 1);
    // Let it come up before killing it (else the kill races its start-up).
    let st = rt
        .pod_sandbox_status(k8s_cri::v1::PodSandboxStatusRequest {
            pod_sandbox_id: pod2.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner();
    assert_eq!(st.status.map(|s| s.state), Some(0), "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill shim");
    assert!(wait_gone(&dir, &pod2));
    let c2 = pods::run_container(
        &mut rt,
        &pod2,
        &pc2,
        container_config("b", &img, &["/bin/echo", "hi"]),
    )
    .await
    .expect("create+start with a new shim");
    let s = pods::wait_exited(&mut rt, &c2).await;
    assert_eq!(s.exit_code, 0, "{s:?}\n{}", d.log());
    let new = shims(&dir, &pod2);
    assert_eq!(new.len(), 1);
    assert_ne!(new, old);

    // Stop + remove shut the shims down.
    pods::remove_pod(&mut rt, &pod).await;
    pods::remove_pod(&mut rt, &pod2).await;
    assert!(wait_gone(&dir, &pod), "shim of a removed pod exits");
    assert!(wait_gone(&dir, &pod2), "shim of a removed pod exits");

    // A pod that is stopped with no containers keeps no shim either.
    let pc3 = pod_config("shimpod3", logs.path().to_str().unwrap());
    let pod3 = pods::run_pod(&mut rt, &pc3).await.expect("RunPodSandbox 3");
    rt.stop_pod_sandbox(k8s_cri::v1::StopPodSandboxRequest {
        pod_sandbox_id: pod3.clone(),
    })
    .await
    .expect("StopPodSandbox");
    assert!(wait_gone(&dir, &pod3), "shim of a stopped empty pod exits");

    // A shim no pod owns (crustd killed inside RunPodSandbox) is stopped at restart.
    d.kill9();
    let bundle = tempfile::tempdir().expect("bundle");
    let out = std::process::Command::new(crust_e2e::workspace_bin("crust-shim", "crust-shim"))
        .args(["-namespace", "crust", "-address"])
        .arg(d.socket())
        .args(["-id", "ghostpod", "-state-dir"])
        .arg(dir.join("state/shims"))
        .arg("start")
        .current_dir(bundle.path())
        .output()
        .expect("crust-shim start");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(shims(&dir, "ghostpod").len(), 1);
    d.restart();
    assert!(
        wait_gone(&dir, "ghostpod"),
        "orphan shim stopped at recovery\n{}",
        d.log()
    );
    let mut rt = pods::Runtime::new(d.channel().await);
    pods::remove_pod(&mut rt, &pod3).await;
}

/// Kills and reaps the crustd on drop, also when the test fails.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sd_notify_ready_once_serving() {
    require_root!();
    let dir = tempfile::tempdir().expect("dir");
    let notify = dir.path().join("notify.sock");
    let rx = UnixDatagram::bind(&notify).expect("bind notify socket");
    rx.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    std::fs::write(
        dir.path().join("config.toml"),
        "[network]\nenabled = false\n",
    )
    .expect("config");
    let sock = dir.path().join("crust.sock");
    let child = Command::new(crust_e2e::workspace_bin("crust-cri", "crustd"))
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .arg("--listen")
        .arg(&sock)
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn crustd");
    let pid = child.id();
    let _k = Kill(child);
    let mut buf = [0u8; 256];
    let n = rx.recv(&mut buf).expect("READY=1 within 20 s");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(msg.contains(&format!("MAINPID={pid}")), "{msg:?}");
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_ok(),
        "socket serves when READY=1 arrives"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn privileged_devices() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let mut pc = pod_config("privpod", logs.path().to_str().unwrap());
    if let Some(l) = pc.linux.as_mut() {
        l.security_context = Some(kc::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        });
    }
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let mut cfg = container_config("busy", &img, &["/bin/sleep", "1000"]);
    if let Some(l) = cfg.linux.as_mut() {
        l.security_context = Some(kc::LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        });
    }
    let busy = pods::run_container(&mut rt, &pod, &pc, cfg)
        .await
        .expect("privileged container");
    let plain = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("plain", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("plain container");

    let st = pods::status(&mut rt, &busy).await;
    assert_eq!(
        st.state,
        kc::ContainerState::ContainerRunning as i32,
        "{st:?}\n{}\n{}",
        std::fs::read_to_string(logs.path().join("busy.log")).unwrap_or_default(),
        d.log()
    );
    // A host device outside the default set shows up only in the privileged container.
    let dev = [
        "/dev/kmsg",
        "/dev/loop-control",
        "/dev/mem",
        "/dev/vda",
        "/dev/sda",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("a host device");
    let probe = format!("if [ -c {dev} ] || [ -b {dev} ]; then echo yes; else echo no; fi");
    let (out, code) = pods::exec(&mut rt, &busy, &probe).await;
    assert_eq!(
        (out.trim(), code),
        ("yes", 0),
        "{dev} in the privileged container"
    );
    let (out, _) = pods::exec(&mut rt, &plain, &probe).await;
    assert_eq!(out.trim(), "no", "{dev} not in a plain container");

    pods::remove_pod(&mut rt, &pod).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_pid_namespace_outlives_first_container() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let pod_ns = kc::NamespaceOption {
        pid: kc::NamespaceMode::Pod as i32,
        ..Default::default()
    };
    let mut pc = pod_config("pidpod", logs.path().to_str().unwrap());
    if let Some(l) = pc.linux.as_mut() {
        l.security_context = Some(kc::LinuxSandboxSecurityContext {
            namespace_options: Some(pod_ns.clone()),
            ..Default::default()
        });
    }
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let in_pod = |name: &str, cmd: &[&str]| {
        let mut c = container_config(name, &img, cmd);
        if let Some(l) = c.linux.as_mut() {
            l.security_context = Some(kc::LinuxContainerSecurityContext {
                namespace_options: Some(pod_ns.clone()),
                ..Default::default()
            });
        }
        c
    };
    // The first container exits at once; the namespace stays.
    let first = pods::run_container(&mut rt, &pod, &pc, in_pod("first", &["/bin/true"]))
        .await
        .expect("first");
    let s = pods::wait_exited(&mut rt, &first).await;
    assert_eq!(s.exit_code, 0, "{s:?}");
    let a = pods::run_container(&mut rt, &pod, &pc, in_pod("a", &["/bin/sleep", "1001"]))
        .await
        .expect("a after the first exited");
    let b = pods::run_container(&mut rt, &pod, &pc, in_pod("b", &["/bin/sleep", "1002"]))
        .await
        .expect("b");
    let (comm, _) = pods::exec(&mut rt, &b, "cat /proc/1/comm").await;
    assert_eq!(
        comm.trim(),
        "crust-pod-init",
        "pid 1 is the pod init\n{}",
        d.log()
    );
    let (ps, _) = pods::exec(&mut rt, &b, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").await;
    assert!(ps.contains("sleep 1001"), "b sees a: {ps:?}");
    // Stopping a does not end the namespace either.
    rt.stop_container(kc::StopContainerRequest {
        container_id: a.clone(),
        timeout: 0,
    })
    .await
    .expect("StopContainer");
    let (ps, code) = pods::exec(&mut rt, &b, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").await;
    assert_eq!(code, 0);
    assert!(
        !ps.contains("sleep 1001") && ps.contains("sleep 1002"),
        "{ps:?}"
    );

    // StopPodSandbox ends the init and with it the namespace.
    let init = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim() == "crust-pod-init")
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&pod))
        })
        .count();
    assert_eq!(init, 1, "one pod init for the pod");
    // The init lives in the pod's cgroup (a leaf named after the pod, as containerd's
    // pause container), in every hierarchy; it moves itself there after RunPodSandbox.
    let init_pid = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim() == "crust-pod-init")
                && std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&pod))
        })
        .map(|e| e.path())
        .expect("pod init");
    let leaf = format!("{}/{pod}/{pod}", d.cgroup_root());
    let in_leaf = || {
        let cg = std::fs::read_to_string(init_pid.join("cgroup")).unwrap_or_default();
        let lines: Vec<&str> = cg.lines().collect();
        (
            !lines.is_empty()
                && lines
                    .iter()
                    .all(|l| l.splitn(3, ':').nth(2) == Some(leaf.as_str())),
            cg,
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !in_leaf().0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ok, cg) = in_leaf();
    assert!(ok, "pod init in {leaf} everywhere:\n{cg}\n{}", d.log());
    // cgroup v2: one hierarchy at /sys/fs/cgroup (the VM suite); v1/hybrid: one per
    // controller below it.
    let hierarchies: Vec<std::path::PathBuf> =
        if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            vec!["/sys/fs/cgroup".into()]
        } else {
            std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect()
        };
    let leaf_dirs: Vec<std::path::PathBuf> = hierarchies
        .iter()
        .map(|h| h.join(leaf.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect();
    assert!(!leaf_dirs.is_empty());
    pods::remove_pod(&mut rt, &pod).await;
    for p in &leaf_dirs {
        assert!(!p.exists(), "{} removed with the pod", p.display());
        assert!(
            !p.parent().is_some_and(|p| p.exists()),
            "pod cgroup {} removed",
            p.display()
        );
    }
    let left = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&pod))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while left() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left(), 0, "nothing of the pod is left running");
}

/// Pids of the processes whose command line is exactly `cmd` (NUL-separated words).
fn procs_with_cmdline(cmd: &[&str]) -> Vec<i32> {
    let want = cmd.join("\0") + "\0";
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn orphan_shim_containers_are_killed_at_recovery() {
    require_root!();
    let (_reg, mut d, mut rt, img, logs, _g) = setup().await;
    let dir = d.dir.path().to_path_buf();
    let pc = pod_config("orphanpod", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    // The pod cgroup goes with the crustd's cgroup root (crust_e2e::cgroup) when `d` drops:
    // the test makes crustd forget the pod, so nobody else removes it.
    // A unique command line to find the container's process by.
    let arg = format!("{}", 900_000 + std::process::id() % 100_000);
    let cmd = ["/bin/sleep", arg.as_str()];
    let running = pods::run_container(&mut rt, &pod, &pc, container_config("r", &img, &cmd))
        .await
        .expect("create+start");
    // A second container only created: recovery must delete it too.
    let created = rt
        .create_container(kc::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("c", &img, &["/bin/true"])),
            sandbox_config: Some(pc.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    let sleeper = procs_with_cmdline(&cmd);
    assert_eq!(sleeper.len(), 1, "the container runs");
    assert_eq!(shims(&dir, &pod).len(), 1);

    // crustd dies and forgets the pod (as a crash inside RemovePodSandbox leaves it):
    // the shim still runs both containers, and no record names them.
    d.kill9();
    {
        let meta = crust_daemon::metadata::Metadata::open(&d.root().join("meta.redb"))
            .expect("open metadata");
        meta.write(|tx| {
            use crust_daemon::metadata::Table;
            tx.delete(Table::Containers, &running)?;
            tx.delete(Table::Containers, &created)?;
            tx.delete(Table::Pods, &pod)?;
            Ok::<_, crust_daemon::metadata::Error>(())
        })
        .expect("forget the pod");
    }
    d.restart();
    assert!(
        wait_gone(&dir, &pod),
        "orphan shim stopped at recovery\n{}",
        d.log()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !procs_with_cmdline(&cmd).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        procs_with_cmdline(&cmd).is_empty(),
        "the orphan's container was killed\n{}",
        d.log()
    );
    let log = d.log();
    assert!(
        !log.contains("did not exit: killing it"),
        "the shim exited on Shutdown, not by SIGKILL\n{log}"
    );
    for id in [&running, &created] {
        assert!(
            log.contains(&format!("container={id}")) || log.contains(id.as_str()),
            "recovery names the killed container {id}\n{log}"
        );
        assert!(
            !dir.join("state/runc/crust").join(id).exists(),
            "the runtime's state of {id} is deleted"
        );
        assert!(
            !dir.join("state/bundles").join(id).exists(),
            "the bundle of {id} is removed"
        );
    }
    // The restarted crustd knows nothing of it and works.
    let mut rt = pods::Runtime::new(d.channel().await);
    let pods = rt
        .list_pod_sandbox(kc::ListPodSandboxRequest { filter: None })
        .await
        .expect("ListPodSandbox")
        .into_inner()
        .items;
    assert!(pods.iter().all(|p| p.id != pod));
}

/// CreateContainer commits the record while the shim creates the task (issue 20); a crash
/// between the two leaves a task in a live pod's shim that no record names. Recovery must
/// delete it through the pod's shim (runtime state gone, rootfs unmounted, bundle removed),
/// keep the pod, and the name is free for a new container.
#[tokio::test(flavor = "multi_thread")]
async fn unrecorded_task_of_a_live_pod_is_deleted_at_recovery() {
    require_root!();
    let (_reg, mut d, mut rt, img, logs, _g) = setup().await;
    let dir = d.dir.path().to_path_buf();
    let pc = pod_config("unrecorded", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let create = |rt: &mut pods::Runtime| {
        let req = kc::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("c", &img, &["/bin/sleep", "1000"])),
            sandbox_config: Some(pc.clone()),
        };
        let mut rt = rt.clone();
        async move { rt.create_container(req).await }
    };
    let id = create(&mut rt)
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    let runtime_state = dir.join("state/runc/crust").join(&id);
    let rootfs = dir.join("state/bundles").join(&id).join("rootfs");
    assert!(runtime_state.exists(), "the task exists");

    // The crash: the task exists, the record never became durable.
    d.kill9();
    {
        let meta = crust_daemon::metadata::Metadata::open(&d.root().join("meta.redb"))
            .expect("open metadata");
        meta.write(|tx| {
            tx.delete(crust_daemon::metadata::Table::Containers, &id)?;
            Ok::<_, crust_daemon::metadata::Error>(())
        })
        .expect("forget the container");
    }
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    // The leftovers go after the socket serves (the host half of recovery): the task, then
    // its rootfs mount and bundle.
    let bundle = rootfs.parent().unwrap().to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (runtime_state.exists() || bundle.exists()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !runtime_state.exists(),
        "the unrecorded task is deleted through the pod's shim\n{}",
        d.log()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&rootfs.display().to_string()),
        "its rootfs is unmounted"
    );
    assert!(!rootfs.parent().unwrap().exists(), "its bundle is removed");
    let status = rt
        .pod_sandbox_status(kc::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner();
    assert_eq!(
        status.status.map(|s| s.state),
        Some(kc::PodSandboxState::SandboxReady as i32),
        "the pod lives on"
    );
    let again = create(&mut rt).await.expect("the name is free again");
    pods::remove_pod(&mut rt, &pod).await;
    drop(again);
}
