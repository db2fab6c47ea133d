//! crustd killed with SIGKILL inside CreateContainer and inside StopPodSandbox (issue 18
//! item 6), at the points the attack found orphans: restart recovery must leave every pod
//! and container either listed in a consistent state or gone without a trace (no container
//! process, shim, cgroup or runtime state for a container nobody lists; no pod listed Ready
//! without its veth and address).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crust_e2e::bridge::{host_local_allocations as allocations, Bridge};
use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{self, container_config, pod_config, Runtime};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn wait_for(mark: &Path, d: &Crustd, what: &str) {
    let t0 = Instant::now();
    while !mark.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what} never started: {}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            out.push((pid, cmd));
        }
    }
    out
}

/// Processes in any cgroup under `root` (every hierarchy).
fn cgroup_procs(root: &str) -> Vec<String> {
    let mut out = Vec::new();
    for h in crust_e2e::cgroup::hierarchies() {
        let mut stack = vec![h.join(root.trim_start_matches('/'))];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
            for p in std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                out.push(format!("{} {p}", d.display()));
            }
        }
    }
    out
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_inside_create_container_leaves_no_orphan() {
    require_root!();
    // The runtime's `create` announces itself, then takes a while: crustd is killed while
    // the shim is still creating the task.
    let tmp = tempfile::tempdir().unwrap();
    let mark = tmp.path().join("create-started");
    let wrapper = tmp.path().join("slow-create-runtime");
    write_exec(
        &wrapper,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = create ] && {{ touch {m}; sleep 2; break; }}; done\nexec {r} \"$@\"\n",
            m = mark.display(),
            r = crust_e2e::workspace_bin("crust-runc", "crust-runc").display()
        ),
    );
    let (_reg, mut d, mut rt, img, logs, _g) = pods::setup_with(&format!(
        "[network]\nenabled = false\n[runtime]\nruntime = \"{}\"\n",
        wrapper.display()
    ))
    .await;
    let pc = pod_config("crashcreate", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let req = kc::CreateContainerRequest {
        pod_sandbox_id: pod.clone(),
        config: Some(container_config("c", &img, &["/bin/sleep", "1000"])),
        sandbox_config: Some(pc.clone()),
    };
    let mut rt2 = Runtime::new(d.channel().await);
    let create = tokio::spawn(async move { rt2.create_container(req).await });
    wait_for(&mark, &d, "the runtime's create").await;
    d.kill9();
    let _ = create.await;
    d.restart();
    let mut rt = Runtime::new(d.channel().await);
    // Recovery ran before crustd served: whatever it lists must be real, and whatever the
    // shim created must be listed.
    let listed: Vec<kc::Container> = rt
        .list_containers(kc::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers;
    // Let the slow create finish in the shim.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runc_state = entries(&d.state().join("runc/crust"));
    let ids: Vec<String> = listed.iter().map(|c| c.id.clone()).collect();
    for s in &runc_state {
        assert!(
            ids.contains(s),
            "the runtime has a container nobody lists: {s} (listed {ids:?}); log:\n{}",
            d.log()
        );
    }
    // Removing the pod leaves nothing: no shim, no container process, no runtime state.
    tokio::time::timeout(Duration::from_secs(60), pods::remove_pod(&mut rt, &pod))
        .await
        .expect("pod removal hung");
    let t0 = Instant::now();
    loop {
        let left = (
            processes_with(&d.state().join("shims").display().to_string()),
            cgroup_procs(&d.cgroup_root()),
            entries(&d.state().join("runc/crust")),
        );
        if left.0.is_empty() && left.1.is_empty() && left.2.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "left after removing the pod (shims, processes in its cgroups, runtime state): {left:?}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_inside_stop_pod_sandbox_never_lists_a_ready_pod_without_network() {
    require_root!();
    let bridge = Bridge("crbr-ch".into());
    let tmp = tempfile::tempdir().unwrap();
    let (conf, bin, ipam): (PathBuf, PathBuf, PathBuf) = (
        tmp.path().join("net.d"),
        tmp.path().join("bin"),
        tmp.path().join("ipam"),
    );
    for dir in [&conf, &bin, &ipam] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mark = tmp.path().join("del-started");
    // First in the chain, so last on DEL: once the bridge plugin has removed the veth and
    // host-local released the address, the first DEL hangs until crustd is gone (later
    // DELs, from recovery, pass).
    write_exec(
        &bin.join("crust-test-slow-del"),
        &format!(
            "#!/bin/sh\ncase \"$CNI_COMMAND\" in\n\
             ADD) echo '{{\"cniVersion\":\"1.0.0\"}}' ;;\n\
             DEL) if [ ! -e {m} ]; then touch {m}; while kill -0 $PPID 2>/dev/null; do sleep 0.05; done; exit 1; fi ;;\n\
             VERSION) echo '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}}' ;;\n\
             esac\nexit 0\n",
            m = mark.display()
        ),
    );
    std::fs::write(
        conf.join("10-ch.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"chnet","plugins":[
  {{"type":"crust-test-slow-del"}},
  {{"type":"bridge","bridge":"{b}","isGateway":true,
    "ipam":{{"type":"host-local","ranges":[[{{"subnet":"172.27.6.0/24"}}]],"dataDir":"{ipam}"}}}}]}}"#,
            b = bridge.0,
            ipam = ipam.display()
        ),
    )
    .unwrap();
    let mut d = Crustd::start(&format!(
        "[network]\ncni_conf_dir = \"{}\"\ncni_bin_dirs = [\"{}\", \"/usr/lib/cni\"]\n",
        conf.display(),
        bin.display()
    ));
    let _g = pods::Leftovers(d.dir.path().to_path_buf());
    let allocated = ipam.join("chnet");
    let mut rt = Runtime::new(d.channel().await);
    let logs = tempfile::tempdir().unwrap();
    let pc = pod_config("crashstop", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    assert_eq!(allocations(&allocated).len(), 1);
    assert_eq!(bridge.ports().len(), 1);

    let mut rt2 = Runtime::new(d.channel().await);
    let id = pod.clone();
    let stop = tokio::spawn(async move {
        rt2.stop_pod_sandbox(kc::StopPodSandboxRequest { pod_sandbox_id: id })
            .await
    });
    wait_for(&mark, &d, "the CNI DEL").await;
    d.kill9();
    let _ = stop.await;
    d.restart();
    let mut rt = Runtime::new(d.channel().await);
    let st = rt
        .pod_sandbox_status(kc::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .expect("the pod is still listed")
        .into_inner()
        .status
        .expect("status");
    let (ips, ports) = (allocations(&allocated), bridge.ports());
    if st.state == kc::PodSandboxState::SandboxReady as i32 {
        assert!(
            ips.len() == 1 && ports.len() == 1,
            "pod listed Ready without its network: addresses {ips:?}, veths {ports:?}; log:\n{}",
            d.log()
        );
    } else {
        assert!(
            ips.is_empty() && ports.is_empty(),
            "stopped pod keeps network: addresses {ips:?}, veths {ports:?}"
        );
    }
    pods::remove_pod(&mut rt, &pod).await;
    assert!(allocations(&allocated).is_empty());
    assert!(d.stop(), "crustd did not stop cleanly");
}

/// A crash inside RunPodSandbox after the pod init's launcher started and before its PID
/// namespace was pinned leaves an init nothing names: no pin, no record; it moves itself into
/// its cgroup whenever it gets to it, possibly after recovery swept the pod cgroups (the crash
/// suite's "cgroup of something unlisted"). Recovery must kill such an init of its own
/// (found by its command line: `--pod-init <pod> <state>`) and remove its cgroup, both for an
/// init already in its cgroup and for one that has not moved yet (here: never will).
#[tokio::test(flavor = "multi_thread")]
async fn recovery_kills_pod_inits_that_were_never_pinned() {
    require_root!();
    let mut d = Crustd::start(&pods::config());
    d.kill9();
    let state = d.state();
    let root = d.cgroup_root();
    let crustd = crust_e2e::workspace_bin("crust-cri", "crustd");
    let mut inits = Vec::new();
    for (pod, cgroup) in [("c1".repeat(32), true), ("c2".repeat(32), false)] {
        // As netns::create leaves it before the init starts.
        std::fs::create_dir_all(state.join("ns").join(&pod)).unwrap();
        let cg = if cgroup {
            format!("{root}/{pod}/{pod}")
        } else {
            String::new()
        };
        let out = std::process::Command::new(&crustd)
            .arg(crust_daemon::runtime::pod::init::POD_INIT_ARG)
            .arg(&pod)
            .arg(&state)
            .arg(&cg)
            .output()
            .unwrap();
        let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        if cgroup {
            let t0 = Instant::now();
            while !std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .unwrap_or_default()
                .contains(&pod)
            {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "init never joined {cg}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        inits.push((pod, pid));
    }
    d.restart();
    let t0 = Instant::now();
    loop {
        let alive: Vec<_> = inits
            .iter()
            .filter(|(_, pid)| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
            })
            .collect();
        let cgroups: Vec<_> = cgroup_procs(&root)
            .into_iter()
            .chain(
                crust_e2e::cgroup::hierarchies()
                    .into_iter()
                    .flat_map(|h| entries(&h.join(root.trim_start_matches('/')))),
            )
            .filter(|l| inits.iter().any(|(p, _)| l.contains(p.as_str())))
            .collect();
        if alive.is_empty() && cgroups.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "after recovery: pod inits alive {alive:?}, cgroups {cgroups:?}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
