//! Crash consistency (issue 18): bursts of Run/Create/Start/Stop/Remove on ~10 pods (each
//! on the built-in bridge `crbr-ch`, 172.27.0.0/16), with crustd killed with SIGKILL at a
//! random moment and restarted (`crustd_killed_during_bursts`), or a random pod's shim
//! killed (`shim_killed_during_bursts`). After each round the invariants are checked:
//!
//! - every acknowledged pod and container is listed, in the state its last acknowledged
//!   call left it in (a call cut short by the kill may have happened or not);
//! - a Ready pod has its netns pin and its address; a NotReady one neither;
//! - nothing is left for anything not listed: no shim, container process, cgroup, netns
//!   pin, veth, address, bundle, runtime state or mount.
//!
//! And after the last round every pod is removed and nothing at all may be left.
//! `#[ignore]`d: run by `e2e/crash/soak.sh` (`CRUST_CRASH_ROUNDS`, default 3 here); not
//! in CI yet, as it still finds a pod cgroup left behind now and then; the seed
//! (`CRUST_CRASH_SEED`, default from the clock) is printed so a failure can be replayed.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crust_e2e::cgroup::CgroupRoot;
use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{self, container_config, pod_config, Runtime};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

const PODS: usize = 10;
const BRIDGE: &str = "crbr-ch";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Created,
    Running,
    Exited,
}

/// What the calls acknowledged so far say about one pod slot, and the call in flight
/// when the burst ended (its effect may or may not have happened).
#[derive(Debug, Default, Clone)]
struct Slot {
    pod: Option<String>,
    ready: bool,
    containers: BTreeMap<String, Want>,
    /// Uncertain: ("pod", op) or (container id, op); ("new", name) for a create/run whose
    /// id was never returned.
    in_flight: Option<(String, &'static str)>,
    next: u32,
    pod_name: String,
}

struct Bridge;

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", BRIDGE])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &format!("crust-{BRIDGE}")])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn rounds() -> usize {
    std::env::var("CRUST_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn seed() -> u64 {
    std::env::var("CRUST_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// One call on slot `i`, chosen from its state; returns false when a call failed (crustd
/// or the shim is gone: the slot records the call as in flight and its worker stops).
async fn step(
    rt: &mut Runtime,
    slot: &Mutex<Slot>,
    i: usize,
    img: &str,
    logs: &str,
    rng: &mut fastrand::Rng,
) -> bool {
    let s = slot.lock().unwrap().clone();
    let round_name = |n: u32| format!("cc{i}-{n}");
    let Some(pod) = s.pod.clone() else {
        let name = round_name(s.next);
        slot.lock().unwrap().next += 1;
        let pc = pod_config(&name, logs);
        return match pods::run_pod(rt, &pc).await {
            Ok(id) => {
                let mut s = slot.lock().unwrap();
                s.pod = Some(id);
                s.pod_name = name;
                s.ready = true;
                true
            }
            Err(_) => {
                slot.lock().unwrap().in_flight = Some(("new-pod".into(), "run"));
                false
            }
        };
    };
    let pc = pod_config(&s.pod_name, logs);
    let pick = rng.u32(0..100);
    let created: Vec<String> = s
        .containers
        .iter()
        .filter(|(_, w)| **w == Want::Created)
        .map(|(k, _)| k.clone())
        .collect();
    let running: Vec<String> = s
        .containers
        .iter()
        .filter(|(_, w)| **w == Want::Running)
        .map(|(k, _)| k.clone())
        .collect();
    let any: Vec<String> = s.containers.keys().cloned().collect();
    let (what, target): (&'static str, String) = if !s.ready {
        ("remove-pod", pod.clone())
    } else if pick < 35 && s.containers.len() < 4 {
        ("create", String::new())
    } else if pick < 60 && !created.is_empty() {
        ("start", created[rng.usize(0..created.len())].clone())
    } else if pick < 75 && !running.is_empty() {
        ("stop", running[rng.usize(0..running.len())].clone())
    } else if pick < 88 && !any.is_empty() {
        ("remove", any[rng.usize(0..any.len())].clone())
    } else if pick < 94 {
        ("stop-pod", pod.clone())
    } else if pick < 97 {
        ("remove-pod", pod.clone())
    } else {
        ("create", String::new())
    };
    let r: Result<(), tonic::Status> = match what {
        "create" => {
            let n = {
                let mut s = slot.lock().unwrap();
                s.next += 1;
                s.next
            };
            let r = rt
                .create_container(kc::CreateContainerRequest {
                    pod_sandbox_id: pod.clone(),
                    config: Some(container_config(
                        &format!("c{n}"),
                        img,
                        &["/bin/sleep", "100000"],
                    )),
                    sandbox_config: Some(pc.clone()),
                })
                .await;
            match r {
                Ok(resp) => {
                    let id = resp.into_inner().container_id;
                    slot.lock().unwrap().containers.insert(id, Want::Created);
                    return true;
                }
                Err(e) => {
                    slot.lock().unwrap().in_flight = Some(("new-container".into(), "create"));
                    eprintln!("slot {i}: create: {e}");
                    return false;
                }
            }
        }
        "start" => rt
            .start_container(kc::StartContainerRequest {
                container_id: target.clone(),
            })
            .await
            .map(|_| ()),
        "stop" => rt
            .stop_container(kc::StopContainerRequest {
                container_id: target.clone(),
                timeout: 0,
            })
            .await
            .map(|_| ()),
        "remove" => rt
            .remove_container(kc::RemoveContainerRequest {
                container_id: target.clone(),
            })
            .await
            .map(|_| ()),
        "stop-pod" => rt
            .stop_pod_sandbox(kc::StopPodSandboxRequest {
                pod_sandbox_id: target.clone(),
            })
            .await
            .map(|_| ()),
        _ => rt
            .remove_pod_sandbox(kc::RemovePodSandboxRequest {
                pod_sandbox_id: target.clone(),
            })
            .await
            .map(|_| ()),
    };
    let mut s = slot.lock().unwrap();
    match r {
        Ok(()) => {
            match what {
                "start" => {
                    s.containers.insert(target, Want::Running);
                }
                "stop" => {
                    s.containers.insert(target, Want::Exited);
                }
                "remove" => {
                    s.containers.remove(&target);
                }
                "stop-pod" => {
                    s.ready = false;
                    for w in s.containers.values_mut() {
                        *w = Want::Exited;
                    }
                }
                _ => {
                    s.pod = None;
                    s.ready = false;
                    s.containers.clear();
                }
            }
            true
        }
        Err(e) => {
            eprintln!("slot {i}: {what} {target}: {e}");
            s.in_flight = Some((target, what));
            false
        }
    }
}

/// What the host holds for this crustd.
#[derive(Debug, Default)]
struct Host {
    shims: BTreeSet<String>,
    runtime_state: BTreeSet<String>,
    bundles: BTreeSet<String>,
    pins: BTreeSet<String>,
    addresses: BTreeSet<String>,
    veths: usize,
    cgroup_dirs: BTreeSet<String>,
    mounts: Vec<String>,
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn host(d: &Crustd, cg: &str) -> Host {
    let state = d.state();
    let shims_dir = state.join("shims").display().to_string();
    let mut h = Host::default();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == &shims_dir) && args.iter().any(|a| a == "serve") {
            if let Some(w) = args.windows(2).find(|w| w[0] == "-id") {
                h.shims.insert(w[1].clone());
            }
        }
    }
    h.runtime_state = names(&state.join("runc/crust"));
    h.bundles = names(&state.join("bundles"));
    h.pins = names(&state.join("ns"));
    // The built-in bridge's IPAM: one file per address, holding the owner pod's id.
    let ipam = d.root().join("network/ipam").join(BRIDGE);
    for e in std::fs::read_dir(&ipam).into_iter().flatten().flatten() {
        let owner = std::fs::read_to_string(e.path()).unwrap_or_default();
        let owner = owner.lines().next().unwrap_or("").trim().to_string();
        if !owner.is_empty() && owner.len() == 64 {
            h.addresses.insert(owner);
        }
    }
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", BRIDGE])
        .output()
        .expect("ip link");
    h.veths = String::from_utf8_lossy(&out.stdout).lines().count();
    for hier in crust_e2e::cgroup::hierarchies() {
        let root = hier.join(cg.trim_start_matches('/'));
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let rel = e
                        .path()
                        .strip_prefix(&root)
                        .map(Path::to_path_buf)
                        .unwrap_or_default();
                    h.cgroup_dirs.insert(rel.display().to_string());
                    stack.push(e.path());
                }
            }
        }
    }
    let dir = d.dir.path().display().to_string();
    h.mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&dir))
        .collect();
    h
}

async fn listing(rt: &mut Runtime) -> (BTreeMap<String, i32>, BTreeMap<String, (String, i32)>) {
    let pods = rt
        .list_pod_sandbox(kc::ListPodSandboxRequest { filter: None })
        .await
        .expect("ListPodSandbox")
        .into_inner()
        .items;
    let ctrs = rt
        .list_containers(kc::ListContainersRequest { filter: None })
        .await
        .expect("ListContainers")
        .into_inner()
        .containers;
    (
        pods.into_iter().map(|p| (p.id, p.state)).collect(),
        ctrs.into_iter()
            .map(|c| (c.id, (c.pod_sandbox_id, c.state)))
            .collect(),
    )
}

fn cstate(w: Want) -> i32 {
    match w {
        Want::Created => kc::ContainerState::ContainerCreated as i32,
        Want::Running => kc::ContainerState::ContainerRunning as i32,
        Want::Exited => kc::ContainerState::ContainerExited as i32,
    }
}

/// Checks the model against the listing and the host; then folds the listing back into the
/// model (resolving the calls that were in flight). Returns the problems found.
fn check(
    slots: &mut [Slot],
    pods_l: &BTreeMap<String, i32>,
    ctrs_l: &BTreeMap<String, (String, i32)>,
    h: &Host,
) -> Vec<String> {
    let mut bad = Vec::new();
    let ready = kc::PodSandboxState::SandboxReady as i32;
    let mut claimed_pods = BTreeSet::new();
    for (i, s) in slots.iter_mut().enumerate() {
        let fl = s.in_flight.take();
        let pod_op = fl
            .as_ref()
            .filter(|(t, _)| s.pod.as_deref() == Some(t.as_str()))
            .map(|(_, op)| *op);
        if let Some(pod) = s.pod.clone() {
            claimed_pods.insert(pod.clone());
            match pods_l.get(&pod) {
                None if pod_op == Some("remove-pod") => {
                    s.pod = None;
                    s.containers.clear();
                    s.ready = false;
                    continue;
                }
                None => bad.push(format!("slot {i}: acknowledged pod {pod} is not listed")),
                Some(st) => {
                    let is_ready = *st == ready;
                    if is_ready != s.ready && !matches!(pod_op, Some("stop-pod" | "remove-pod")) {
                        bad.push(format!(
                            "slot {i}: pod {pod} listed ready={is_ready}, acknowledged ready={}",
                            s.ready
                        ));
                    }
                    s.ready = is_ready;
                }
            }
            for (id, want) in s.containers.clone() {
                let op = fl.as_ref().filter(|(t, _)| *t == id).map(|(_, op)| *op);
                match ctrs_l.get(&id) {
                    None if op == Some("remove") || pod_op == Some("remove-pod") => {
                        s.containers.remove(&id);
                    }
                    None => bad.push(format!(
                        "slot {i}: acknowledged container {id} is not listed"
                    )),
                    Some((_, st)) => {
                        let ok = *st == cstate(want)
                            || (op == Some("start")
                                && (*st == cstate(Want::Running) || *st == cstate(Want::Exited)))
                            || (matches!(op, Some("stop" | "remove"))
                                || matches!(pod_op, Some("stop-pod" | "remove-pod")))
                                && *st == cstate(Want::Exited);
                        if !ok {
                            bad.push(format!("slot {i}: container {id} listed in state {st}, acknowledged {want:?} (in flight: {op:?})"));
                        }
                        let now = if *st == cstate(Want::Running) {
                            Want::Running
                        } else if *st == cstate(Want::Created) {
                            Want::Created
                        } else {
                            Want::Exited
                        };
                        s.containers.insert(id, now);
                    }
                }
            }
            // A create whose answer never came may have happened: adopt what is listed.
            for (id, (p, st)) in ctrs_l {
                if p == &pod && !s.containers.contains_key(id) {
                    if fl.as_ref().is_some_and(|(t, _)| t == "new-container") {
                        let w = if *st == cstate(Want::Created) {
                            Want::Created
                        } else {
                            Want::Exited
                        };
                        s.containers.insert(id.clone(), w);
                    } else {
                        bad.push(format!(
                            "slot {i}: container {id} listed that nobody created"
                        ));
                    }
                }
            }
        }
    }
    // Pods listed but in no slot: a RunPodSandbox cut short. They must be consistent and are
    // removed by the next round's cleanup (`orphans`).
    for (pod, st) in pods_l {
        let has_addr = h.addresses.contains(pod);
        let pinned = h.pins.contains(pod);
        if *st == ready && !(has_addr && pinned) {
            bad.push(format!("pod {pod} listed Ready without its network (address {has_addr}, netns pin {pinned})"));
        }
        if *st != ready && has_addr {
            bad.push(format!("NotReady pod {pod} still holds an address"));
        }
        let _ = claimed_pods.contains(pod);
    }
    // Nothing for what is not listed.
    for p in &h.shims {
        if !pods_l.contains_key(p) {
            bad.push(format!("shim of unlisted pod {p}"));
        }
    }
    for p in h.pins.iter().chain(h.addresses.iter()) {
        if !pods_l.contains_key(p) {
            bad.push(format!("netns pin or address of unlisted pod {p}"));
        }
    }
    for c in h.runtime_state.iter().chain(h.bundles.iter()) {
        if !ctrs_l.contains_key(c) {
            bad.push(format!("runtime state or bundle of unlisted container {c}"));
        }
    }
    for dir in &h.cgroup_dirs {
        let known = dir
            .split('/')
            .all(|part| part.len() != 64 || pods_l.contains_key(part) || ctrs_l.contains_key(part));
        if !known {
            bad.push(format!("cgroup {dir} of something unlisted"));
        }
    }
    let ready_pods = pods_l.values().filter(|s| **s == ready).count();
    if h.veths != ready_pods {
        bad.push(format!(
            "{} veths on {BRIDGE} for {ready_pods} ready pods",
            h.veths
        ));
    }
    bad
}

/// The end of one round, the same for both kinds of kill.
struct Round<'a> {
    round: usize,
    seed: u64,
    pods: &'a BTreeMap<String, i32>,
    containers: &'a BTreeMap<String, (String, i32)>,
}

impl Round<'_> {
    /// Fails with every problem `check` found (with the host and crustd's log), or removes
    /// the pods nobody owns and makes the checked `model` the slots' state.
    async fn end(
        &self,
        rt: &mut Runtime,
        d: &Crustd,
        slots: &[Mutex<Slot>],
        model: Vec<Slot>,
        bad: &[String],
        h: &Host,
    ) {
        let (round, seed) = (self.round, self.seed);
        assert!(
            bad.is_empty(),
            "round {round} (seed {seed}):\n{}\nhost: {h:#?}\nlog:\n{}",
            bad.join("\n"),
            d.log()
        );
        remove_orphans(rt, &model, self.pods).await;
        for (i, m) in model.into_iter().enumerate() {
            *slots[i].lock().unwrap() = m;
        }
        eprintln!(
            "round {round}: {} pods, {} containers listed, consistent",
            self.pods.len(),
            self.containers.len()
        );
    }
}

/// Pods listed that no slot owns (a RunPodSandbox cut short): removed.
async fn remove_orphans(rt: &mut Runtime, slots: &[Slot], pods_l: &BTreeMap<String, i32>) {
    let owned: BTreeSet<&String> = slots.iter().filter_map(|s| s.pod.as_ref()).collect();
    for p in pods_l.keys() {
        if !owned.contains(p) {
            pods::remove_pod(rt, p).await;
        }
    }
}

async fn burst(
    d: &Crustd,
    slots: &Arc<Vec<Mutex<Slot>>>,
    img: &str,
    logs: &str,
    seed: u64,
    ops: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut hs = Vec::new();
    for i in 0..PODS {
        let ch = d.channel().await;
        let (slots, img, logs) = (slots.clone(), img.to_string(), logs.to_string());
        hs.push(tokio::spawn(async move {
            let mut rt = Runtime::new(ch);
            let mut rng =
                fastrand::Rng::with_seed(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for _ in 0..ops {
                if !step(&mut rt, &slots[i], i, &img, &logs, &mut rng).await {
                    break;
                }
            }
        }));
    }
    hs
}

/// Waits until no process holds crustd's state lock file open. A child crustd was forking
/// when it was killed holds it (with the flock) until its exec closes it; anything holding
/// it longer is a leak worth a failure of its own.
async fn lock_released(d: &Crustd) {
    let lock = d.state().join("crustd.lock");
    let t0 = Instant::now();
    loop {
        let mut holders = Vec::new();
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            for f in std::fs::read_dir(p.path().join("fd"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if std::fs::read_link(f.path()).is_ok_and(|l| l == lock) {
                    let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                    holders.push(format!(
                        "{} {}",
                        p.file_name().to_string_lossy(),
                        String::from_utf8_lossy(&cmd).replace('\0', " ")
                    ));
                }
            }
        }
        if holders.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "crustd's state lock is held after its death by: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Env {
    _bridge: Bridge,
    _cg: CgroupRoot,
    cg: String,
    _reg: crust_e2e::registry::Registry,
    _cni: tempfile::TempDir,
    d: Crustd,
    img: String,
    logs: tempfile::TempDir,
}

async fn env() -> Env {
    let bridge = Bridge;
    let cg = CgroupRoot::unique("ch");
    let cni = tempfile::tempdir().unwrap();
    let reg = crust_e2e::registry::Registry::start();
    let image = crust_e2e::image::busybox();
    crust_e2e::image::push(&reg.host(), "test/busybox", "v1", &image, None).await;
    crust_e2e::workspace_bin("crust-shim", "crust-shim");
    crust_e2e::workspace_bin("crust-runc", "crust-runc");
    let d = Crustd::start(&format!(
        "[network]\nbridge = \"{BRIDGE}\"\nsubnet = \"172.27.0.0/16\"\ncni_conf_dir = \"{}\"\n[runtime]\ncgroup_root = \"{}\"\n",
        cni.path().display(),
        cg.path()
    ));
    let img = format!("{}/test/busybox:v1", reg.host());
    crust_e2e::cri::Images::new(d.channel().await)
        .pull(&img, None)
        .await
        .expect("pull");
    Env {
        _bridge: bridge,
        cg: cg.path().to_string(),
        _cg: cg,
        _reg: reg,
        _cni: cni,
        d,
        img,
        logs: tempfile::tempdir().unwrap(),
    }
}

async fn final_cleanup(e: &Env, slots: &[Slot]) {
    let mut rt = Runtime::new(e.d.channel().await);
    let (pods_l, _) = listing(&mut rt).await;
    remove_orphans(&mut rt, slots, &pods_l).await;
    for s in slots {
        if let Some(p) = &s.pod {
            pods::remove_pod(&mut rt, p).await;
        }
    }
    let t0 = Instant::now();
    loop {
        let h = host(&e.d, &e.cg);
        let empty = h.shims.is_empty()
            && h.runtime_state.is_empty()
            && h.bundles.is_empty()
            && h.pins.is_empty()
            && h.addresses.is_empty()
            && h.veths == 0
            && h.cgroup_dirs.iter().all(|d| d.is_empty())
            && h.mounts.is_empty();
        if empty {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "left after removing every pod: {h:#?}\n{}",
            e.d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "CI stage `crash` and e2e/crash/soak.sh"]
async fn crustd_killed_during_bursts() {
    require_root!();
    let seed = seed();
    eprintln!("CRUST_CRASH_SEED={seed} CRUST_CRASH_ROUNDS={}", rounds());
    let mut e = env().await;
    let mut rng = fastrand::Rng::with_seed(seed);
    let logs = e.logs.path().display().to_string();
    let slots: Arc<Vec<Mutex<Slot>>> =
        Arc::new((0..PODS).map(|_| Mutex::new(Slot::default())).collect());
    for round in 0..rounds() {
        let hs = burst(
            &e.d,
            &slots,
            &e.img,
            &logs,
            seed.wrapping_add(round as u64),
            1000,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.u64(200..2500))).await;
        e.d.kill9();
        for h in hs {
            h.await.expect("a burst worker panicked");
        }
        lock_released(&e.d).await;
        e.d.restart();
        let mut rt = Runtime::new(e.d.channel().await);
        let (pods_l, ctrs_l) = listing(&mut rt).await;
        // Exiting processes (a shim told to shut down lingers ~100 ms after removing its
        // socket) get a few seconds to go.
        let t0 = Instant::now();
        let (model, bad, h) = loop {
            let h = host(&e.d, &e.cg);
            let mut model: Vec<Slot> = slots.iter().map(|s| s.lock().unwrap().clone()).collect();
            let bad = check(&mut model, &pods_l, &ctrs_l, &h);
            if bad.is_empty() || t0.elapsed() > Duration::from_secs(5) {
                break (model, bad, h);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let r = Round {
            round,
            seed,
            pods: &pods_l,
            containers: &ctrs_l,
        };
        r.end(&mut rt, &e.d, &slots, model, &bad, &h).await;
    }
    let model: Vec<Slot> = slots.iter().map(|s| s.lock().unwrap().clone()).collect();
    final_cleanup(&e, &model).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "CI stage `crash` and e2e/crash/soak.sh"]
async fn shim_killed_during_bursts() {
    require_root!();
    let seed = seed();
    eprintln!("CRUST_CRASH_SEED={seed} CRUST_CRASH_ROUNDS={}", rounds());
    let e = env().await;
    let mut rng = fastrand::Rng::with_seed(seed);
    let logs = e.logs.path().display().to_string();
    let slots: Arc<Vec<Mutex<Slot>>> =
        Arc::new((0..PODS).map(|_| Mutex::new(Slot::default())).collect());
    for round in 0..rounds() {
        // Bounded bursts: the workers end by themselves.
        let hs = burst(
            &e.d,
            &slots,
            &e.img,
            &logs,
            seed.wrapping_add(round as u64),
            12,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.u64(200..2000))).await;
        let h = host(&e.d, &e.cg);
        let victims: Vec<&String> = h.shims.iter().collect();
        let mut victim = None;
        if !victims.is_empty() {
            let pod = victims[rng.usize(0..victims.len())].clone();
            victim = Some(pod.clone());
            let shims_dir = e.d.state().join("shims").display().to_string();
            for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(&shims_dir) && cmd.contains(&pod) && cmd.contains(" serve") {
                    if let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() {
                        eprintln!("round {round}: killing the shim of {pod} (pid {pid})");
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
        for h in hs {
            h.await.expect("a burst worker panicked");
        }
        // Calls refused because the shim had just died leave the model in flight; the
        // containers of a dead shim are exited (255) within a few seconds.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut rt = Runtime::new(e.d.channel().await);
        let (pods_l, ctrs_l) = listing(&mut rt).await;
        let h = host(&e.d, &e.cg);
        let mut model: Vec<Slot> = slots.iter().map(|s| s.lock().unwrap().clone()).collect();
        // The killed shim's containers are Exited (255, "shim died"), whatever was
        // acknowledged: accept that, for that pod only and only with crustd's own status
        // saying so. (Keyed on "the pod has no shim now" this was wrong: a call after the
        // kill starts a new shim for the pod, and its old containers, rightly exited, were
        // reported as listed in the wrong state.)
        for s in &mut model {
            let Some(p) = &s.pod else { continue };
            if victim.as_ref() != Some(p) {
                continue;
            }
            for (id, w) in s.containers.iter_mut() {
                if ctrs_l
                    .get(id)
                    .is_some_and(|(_, st)| *st == cstate(Want::Exited))
                    && *w != Want::Exited
                {
                    let st = pods::status(&mut rt, id).await;
                    if (st.exit_code, st.message.as_str()) == (255, "shim died") {
                        *w = Want::Exited;
                    }
                }
            }
        }
        let mut bad = check(&mut model, &pods_l, &ctrs_l, &h);
        // No container listed Running without a live shim.
        for (id, (pod, st)) in &ctrs_l {
            if *st == cstate(Want::Running) && !h.shims.contains(pod) {
                bad.push(format!(
                    "container {id} listed Running but the shim of {pod} is dead"
                ));
            }
        }
        let r = Round {
            round,
            seed,
            pods: &pods_l,
            containers: &ctrs_l,
        };
        r.end(&mut rt, &e.d, &slots, model, &bad, &h).await;
    }
    let model: Vec<Slot> = slots.iter().map(|s| s.lock().unwrap().clone()).collect();
    final_cleanup(&e, &model).await;
}
