//! Checkpoint and restore through the CRI on a node where CRIU works (the VM suite runs it
//! in a Debian 12 guest, kernel 6.1, Debian's criu 3.17; e2e/vm): CheckpointContainer of
//! a running counter writes the archive kubelet asked for, laid out as CRI-O/containerd
//! write it, and the container keeps running; after the container is removed,
//! CreateContainer with the archive as its image and StartContainer bring it back, and
//! the counter (a shell variable, so the process's memory) goes on from where the
//! checkpoint caught it, writing into the restored rootfs and log.
//!
//! Skipped, saying so, where `criu check` fails (the host: runtime_checkpoint checks the
//! refusal there).

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use crust_e2e::pods::{self, container_config, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /tmp/cnt; echo n=$i; sleep 0.2; done";

/// `cfg` with its own PID namespace (kubelet's default; CRI's default is the pod's).
fn own_pid_ns(mut cfg: kc::ContainerConfig) -> kc::ContainerConfig {
    let linux = cfg.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    sc.namespace_options = Some(kc::NamespaceOption {
        pid: kc::NamespaceMode::Container as i32,
        ..Default::default()
    });
    cfg
}

fn criu_works() -> bool {
    let ok = std::process::Command::new("criu")
        .arg("check")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `criu check` fails here (the VM suite, e2e/vm/run.sh, runs this)");
    }
    ok
}

async fn counter(rt: &mut pods::Runtime, id: &str) -> u64 {
    let (out, code) = pods::exec(rt, id, "cat /tmp/cnt").await;
    assert_eq!(code, 0, "cat /tmp/cnt: {out}");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("counter {out:?}"))
}

/// The archive's entries: name -> contents (small files only; others empty).
fn entries(archive: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(std::fs::File::open(archive).expect("open archive"));
    let mut out = BTreeMap::new();
    for e in a.entries().expect("tar") {
        let mut e = e.expect("entry");
        let name = e.path().expect("entry path").display().to_string();
        let mut data = Vec::new();
        if e.header().size().unwrap_or(0) < 1 << 20 {
            e.read_to_end(&mut data).expect("read entry");
        }
        out.insert(name, data);
    }
    out
}

/// The value of /tmp/cnt inside rootfs-diff.tar.
fn counter_in_diff(diff: &[u8]) -> u64 {
    let mut a = tar::Archive::new(diff);
    for e in a.entries().expect("rootfs diff") {
        let mut e = e.expect("rootfs diff entry");
        if e.path().expect("path").display().to_string() == "tmp/cnt" {
            let mut s = String::new();
            e.read_to_string(&mut s).expect("read tmp/cnt");
            return s.trim().parse().expect("counter in rootfs-diff.tar");
        }
    }
    panic!("no tmp/cnt in rootfs-diff.tar");
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_remove_restore_keeps_counting() {
    require_root!();
    if !criu_works() {
        return;
    }
    let (_reg, _d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("ckpt", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let cfg = own_pid_ns(container_config(
        "counter",
        &img,
        &["/bin/sh", "-c", COUNTER],
    ));
    let id = pods::run_container(&mut rt, &pod, &pc, cfg.clone())
        .await
        .expect("create+start");
    // Long enough that a restarted counter (from 1) cannot pass for a restored one.
    while counter(&mut rt, &id).await < 15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let archive = logs.path().join("checkpoint-counter.tar");
    let t0 = std::time::Instant::now();
    rt.checkpoint_container(kc::CheckpointContainerRequest {
        container_id: id.clone(),
        location: archive.display().to_string(),
        timeout: 240,
    })
    .await
    .expect("CheckpointContainer");
    eprintln!("checkpoint took {:?}", t0.elapsed());

    // The container keeps running (and counting).
    let s = pods::status(&mut rt, &id).await;
    assert_eq!(s.state, kc::ContainerState::ContainerRunning as i32);
    let after = counter(&mut rt, &id).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        counter(&mut rt, &id).await > after,
        "stopped counting after the checkpoint"
    );

    // The archive, as CRI-O/containerd lay it out.
    let e = entries(&archive);
    for want in [
        "config.dump",
        "spec.dump",
        "rootfs-diff.tar",
        "deleted.files",
        "container.log",
        "stats-dump",
        "dump.log",
        "checkpoint/inventory.img",
        "checkpoint/pstree.img",
        "checkpoint/descriptors.json",
    ] {
        assert!(
            e.contains_key(want),
            "{want} not in the archive: {:?}",
            e.keys()
        );
    }
    let config: serde_json::Value =
        serde_json::from_slice(&e["config.dump"]).expect("config.dump is JSON");
    assert_eq!(config["id"], id.as_str());
    assert_eq!(config["name"], "counter");
    assert_eq!(config["rootfsImageName"], img.as_str());
    let spec: serde_json::Value =
        serde_json::from_slice(&e["spec.dump"]).expect("spec.dump is JSON");
    assert!(
        spec["process"]["args"].to_string().contains("while"),
        "{spec}"
    );
    let deleted: Vec<String> =
        serde_json::from_slice(&e["deleted.files"]).expect("deleted.files is JSON");
    assert!(deleted.is_empty(), "{deleted:?}");
    let at_checkpoint = counter_in_diff(&e["rootfs-diff.tar"]);
    assert!(
        at_checkpoint >= 15,
        "counter {at_checkpoint} at the checkpoint"
    );
    eprintln!("counter at the checkpoint: {at_checkpoint}");

    // Gone...
    rt.stop_container(kc::StopContainerRequest {
        container_id: id.clone(),
        timeout: 0,
    })
    .await
    .expect("StopContainer");
    rt.remove_container(kc::RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .expect("RemoveContainer");

    // ...and back from the archive (the same config, the archive as the image).
    let mut rcfg = cfg.clone();
    rcfg.image = Some(kc::ImageSpec {
        image: archive.display().to_string(),
        ..Default::default()
    });
    let t0 = std::time::Instant::now();
    let rid = pods::run_container(&mut rt, &pod, &pc, rcfg)
        .await
        .expect("CreateContainer + StartContainer from the checkpoint");
    eprintln!("restore took {:?}", t0.elapsed());
    assert_ne!(rid, id);
    let s = pods::status(&mut rt, &rid).await;
    assert_eq!(
        s.state,
        kc::ContainerState::ContainerRunning as i32,
        "{s:?}"
    );
    assert_eq!(
        s.annotations.get("restored").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        s.image.as_ref().map(|i| i.image.as_str()),
        Some(img.as_str())
    );

    // Memory and files back: the shell's variable goes on from the checkpointed value
    // (a restarted shell would count from 1 again), and keeps counting.
    let restored = counter(&mut rt, &rid).await;
    assert!(
        restored >= at_checkpoint,
        "counter {restored} after the restore, {at_checkpoint} at the checkpoint"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let later = counter(&mut rt, &rid).await;
    assert!(later > restored, "not counting after the restore ({later})");
    // The log: the lines up to the checkpoint (from the archive), then the restored
    // process's next ones.
    let log = std::fs::read_to_string(logs.path().join("counter.log")).expect("log");
    assert!(log.contains(&format!(" n={at_checkpoint}\n")), "{log}");
    assert!(
        log.contains(&format!(" n={}\n", at_checkpoint + 1)),
        "{log}"
    );
    pods::remove_pod(&mut rt, &pod).await;
}
