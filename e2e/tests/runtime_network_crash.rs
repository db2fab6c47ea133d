//! crustd killed with SIGKILL in the middle of RunPodSandbox — inside the CNI ADD, after
//! Debian's bridge + host-local plugins have created the veth and allocated the address —
//! then restarted: start-up reconciliation leaves no pinned netns, veth, IP allocation or
//! CNI cache entry behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crust_e2e::bridge::{host_local_allocations as allocations, Bridge};
use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{self, pod_config, Runtime};
use crust_e2e::require_root;

/// Mounts (netns pins, shm) under crustd's directory.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&dir))
        .collect()
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_inside_cni_add_is_reconciled_at_restart() {
    require_root!();
    let n = std::process::id() % 200 + 20;
    let bridge = Bridge(format!("crtk{n}"));
    let tmp = tempfile::tempdir().unwrap();
    let (conf, bin, ipam) = (
        tmp.path().join("net.d"),
        tmp.path().join("bin"),
        tmp.path().join("ipam"),
    );
    let mark = tmp.path().join("add-started");
    for d in [&conf, &bin, &ipam] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Last in the chain: on ADD it says it started and then hangs until its caller (crustd)
    // is gone, so the SIGKILL lands in the middle of the network setup.
    let slow = bin.join("crust-test-slow");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\ncase \"$CNI_COMMAND\" in\n\
             ADD) touch {}; while kill -0 $PPID 2>/dev/null; do sleep 0.05; done; exit 1 ;;\n\
             VERSION) echo '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}}' ;;\n\
             *) exit 0 ;;\nesac\n",
            mark.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        conf.join("10-crash.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"crashnet","plugins":[
  {{"type":"bridge","bridge":"{b}","isGateway":true,
    "ipam":{{"type":"host-local","ranges":[[{{"subnet":"10.{n}.78.0/24"}}]],"dataDir":"{ipam}"}}}},
  {{"type":"crust-test-slow"}}]}}"#,
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
    let allocated = ipam.join("crashnet");

    let mut rt: Runtime = Runtime::new(d.channel().await);
    let logs = tempfile::tempdir().unwrap();
    let pc = pod_config("crashpod", logs.path().to_str().unwrap());
    let run = tokio::spawn(async move { pods::run_pod(&mut rt, &pc).await });

    let t0 = Instant::now();
    while !mark.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the slow plugin never ran: {}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Half done: the bridge plugin made a veth and host-local holds an address.
    assert_eq!(
        allocations(&allocated).len(),
        1,
        "{:?}",
        allocations(&allocated)
    );
    assert_eq!(bridge.ports().len(), 1, "{:?}", bridge.ports());

    d.kill9();
    assert!(
        run.await.unwrap().is_err(),
        "RunPodSandbox survived the kill"
    );
    d.restart();

    // Start-up recovery runs before crustd serves; give it a moment all the same.
    let t0 = Instant::now();
    loop {
        let left = (
            allocations(&allocated),
            bridge.ports(),
            mounts_under(d.dir.path()),
            files_under(&d.root().join("cni/results")),
        );
        if left.0.is_empty() && left.1.is_empty() && left.2.is_empty() && left.3 == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "left behind after restart (ips, veths, mounts, cni cache): {left:?}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rt: Runtime = Runtime::new(d.channel().await);
    let pods = rt
        .list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(
        pods.iter()
            .all(|p| p.state != k8s_cri::v1::PodSandboxState::SandboxReady as i32),
        "a half-created pod is reported ready: {pods:?}"
    );
    assert!(d.stop(), "crustd did not stop cleanly");
}
