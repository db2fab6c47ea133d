//! A pod's shim killed with SIGKILL (issue 18 item 5): crustd notices, marks the shim's
//! containers exited (255, "shim died") with their Stopped events, kills and cleans what
//! the containers left (processes, cgroups, runtime state, rootfs mounts), and Stop and
//! Remove work afterwards; the pod runs new containers through a new shim. And no
//! container, started or only created, holds any socket of its shim (the listening socket
//! leaked into a created container kept the dead shim's address accepting, and every call
//! for the pod hung).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use crust_e2e::pods::{self, container_config, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// The pid of `pod`'s shim (its command line names the pod and this crustd's state).
fn shim_pid(state: &Path, pod: &str) -> Option<i32> {
    let shims = state.join("shims").display().to_string();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let serve = args.iter().any(|a| a == "serve");
        let ours = args.iter().any(|a| a == &shims);
        let pod_arg = args.windows(2).any(|w| w[0] == "-id" && w[1] == pod);
        if serve && ours && pod_arg {
            return Some(pid);
        }
    }
    None
}

/// Targets of `pid`'s fds: (fd number, link).
fn fds(pid: i32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().parse().unwrap_or(u32::MAX);
        let link = std::fs::read_link(e.path())
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        out.push((n, link));
    }
    out.sort();
    out
}

/// The init pid of container `id` (the shim's pid file in the bundle).
fn init_pid(state: &Path, id: &str) -> i32 {
    let p = state.join("bundles").join(id).join("init.pid");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .expect("pid")
}

fn alive(pid: i32) -> bool {
    // A zombie (reparented to an init that does not reap) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn create(
    rt: &mut pods::Runtime,
    pod: &str,
    pc: &kc::PodSandboxConfig,
    cfg: kc::ContainerConfig,
) -> String {
    rt.create_container(kc::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(cfg),
        sandbox_config: Some(pc.clone()),
    })
    .await
    .expect("CreateContainer")
    .into_inner()
    .container_id
}

/// A pod `name` with two containers sleeping: "created" (only created) and "running";
/// returns (pod, created, running).
async fn created_and_running(
    rt: &mut pods::Runtime,
    img: &str,
    name: &str,
    logs: &tempfile::TempDir,
) -> (String, String, String) {
    let pc = pod_config(name, logs.path().to_str().unwrap());
    let pod = pods::run_pod(rt, &pc).await.unwrap();
    let created = create(
        rt,
        &pod,
        &pc,
        container_config("created", img, &["/bin/sleep", "1000"]),
    )
    .await;
    let running = pods::run_container(
        rt,
        &pod,
        &pc,
        container_config("running", img, &["/bin/sleep", "1000"]),
    )
    .await
    .unwrap();
    (pod, created, running)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_container_holds_a_socket_of_its_shim() {
    require_root!();
    // The runtime is a wrapper that records the fds it was started with, then execs
    // crust-runc: whatever the shim leaks reaches the runtime, its hooks and (through a
    // runtime that does not close everything) the container.
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("fds");
    std::fs::create_dir(&record).unwrap();
    let wrapper = tmp.path().join("crust-runc-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor f in /proc/$$/fd/*; do echo \"${{f##*/}} $(readlink $f)\"; done > {}/$$\nexec {} \"$@\"\n",
            record.display(),
            crust_e2e::workspace_bin("crust-runc", "crust-runc").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (_reg, d, mut rt, img, logs, _g) = pods::setup_with(&format!(
        "[network]\nenabled = false\n[runtime]\nruntime = \"{}\"\n",
        wrapper.display()
    ))
    .await;
    let (pod, created, running) = created_and_running(&mut rt, &img, "fds", &logs).await;
    let shim = shim_pid(&d.state(), &pod).expect("the pod's shim");
    let shim_sockets: Vec<String> = fds(shim)
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.starts_with("socket:"))
        .collect();
    assert!(!shim_sockets.is_empty(), "the shim has no socket at all");
    for id in [&created, &running] {
        let pid = init_pid(&d.state(), id);
        let held = fds(pid);
        assert!(!held.is_empty(), "cannot list the fds of {id} (pid {pid})");
        let leaked: Vec<_> = held
            .iter()
            .filter(|(_, l)| shim_sockets.contains(l))
            .collect();
        assert!(
            leaked.is_empty(),
            "container {id} (pid {pid}) holds sockets of its shim: {leaked:?}; all fds: {held:?}"
        );
    }
    // Nor did any runtime command the shim ran.
    let mut runs = 0;
    for e in std::fs::read_dir(&record).unwrap().flatten() {
        runs += 1;
        let text = std::fs::read_to_string(e.path()).unwrap();
        for l in text.lines() {
            let link = l.split_once(' ').map(|(_, l)| l).unwrap_or("");
            assert!(
                !shim_sockets.iter().any(|s| s == link),
                "a runtime command started by the shim holds its socket {link}:\n{text}"
            );
        }
    }
    assert!(
        runs >= 3,
        "the wrapper ran {runs} times: not the shim's runtime?"
    );
    // A started container's program has nothing but its stdio.
    let held = fds(init_pid(&d.state(), &running));
    assert_eq!(
        held.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [0, 1, 2],
        "fds of the running container: {held:?}"
    );
    pods::remove_pod(&mut rt, &pod).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_shim_is_noticed_and_cleaned_up() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let mut events = rt
        .get_container_events(kc::GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let (pod, created, running) = created_and_running(&mut rt, &img, "shimkill", &logs).await;
    let pc = pod_config("shimkill", logs.path().to_str().unwrap());
    let state = d.state();
    let pids = [init_pid(&state, &created), init_pid(&state, &running)];
    let shim = shim_pid(&state, &pod).expect("the pod's shim");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    // Both containers are marked exited, without any call about them.
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in [&created, &running] {
        loop {
            let s = pods::status(&mut rt, id).await;
            if s.state == kc::ContainerState::ContainerExited as i32 {
                assert_eq!(
                    (s.exit_code, s.message.as_str()),
                    (255, "shim died"),
                    "{s:?}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} still {:?} after its shim was killed; crustd log:\n{}",
                s.state,
                d.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // One Stopped event each (after the Created/Started ones).
    let mut stopped = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stopped.len() < 2 && Instant::now() < deadline {
        let Ok(Ok(Some(e))) = tokio::time::timeout(Duration::from_secs(5), events.message()).await
        else {
            break;
        };
        if e.container_event_type == kc::ContainerEventType::ContainerStoppedEvent as i32 {
            stopped.push(e.container_id);
        }
    }
    stopped.sort();
    let mut want = vec![created.clone(), running.clone()];
    want.sort();
    assert_eq!(stopped, want, "Stopped events");
    // Their processes, runtime state and cgroups are gone.
    for pid in pids {
        assert!(!alive(pid), "container process {pid} outlived its shim");
    }
    let runc_state = state.join("runc/crust");
    for id in [&created, &running] {
        assert!(
            !runc_state.join(id).exists(),
            "runtime state of {id} is left"
        );
    }
    let cg_root = d.cgroup_root();
    for id in [&created, &running] {
        for h in crust_e2e::cgroup::hierarchies() {
            let leftover: Vec<_> = walk(&h.join(cg_root.trim_start_matches('/')))
                .into_iter()
                .filter(|p| p.display().to_string().contains(id.as_str()))
                .collect();
            assert!(leftover.is_empty(), "cgroups of {id} left: {leftover:?}");
        }
    }

    // Stop and Remove answer (quickly) and clean the rest.
    for id in [&created, &running] {
        tokio::time::timeout(
            Duration::from_secs(20),
            rt.stop_container(kc::StopContainerRequest {
                container_id: id.to_string(),
                timeout: 0,
            }),
        )
        .await
        .expect("StopContainer hung")
        .expect("StopContainer");
        tokio::time::timeout(
            Duration::from_secs(20),
            rt.remove_container(kc::RemoveContainerRequest {
                container_id: id.to_string(),
            }),
        )
        .await
        .expect("RemoveContainer hung")
        .expect("RemoveContainer");
        assert!(!state.join("bundles").join(id).exists(), "bundle of {id}");
    }
    // The pod still runs containers, through a new shim.
    let again = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("again", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("a container after the shim died");
    assert_eq!(
        pods::status(&mut rt, &again).await.state,
        kc::ContainerState::ContainerRunning as i32
    );
    tokio::time::timeout(Duration::from_secs(30), pods::remove_pod(&mut rt, &pod))
        .await
        .expect("pod removal hung");
}

/// Every directory under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
            out.extend(walk(&e.path()));
        }
    }
    out
}
