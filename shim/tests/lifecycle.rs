//! Lifecycle, exec, events, grouping, reconnect and bad requests, through real shims
//! driven over ttrpc. Root only.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::TaskClient;
use ttrpc::Code;

#[tokio::test]
async fn lifecycle_and_events() {
    if !is_root() {
        return;
    }
    let (mut shim, b) =
        Shim::start(&["sh", "-c", "echo hello; sleep 100"], &SpecOpts::default()).await;
    let out = shim.path("out");
    let out_uri = format!("file://{}", out.display());
    let pid = shim
        .create(&b, ["", &out_uri, &out_uri], false)
        .await
        .unwrap();
    assert!(pid > 0);
    let st = shim.state(&b.id, "").await.unwrap();
    assert_eq!(st.status.enum_value_or_default(), api::Status::CREATED);
    assert_eq!(st.pid, pid);
    assert_eq!(shim.start_task(&b.id, "").await.unwrap(), pid);
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);
    assert!(eventually(|| std::fs::read_to_string(&out).unwrap_or_default() == "hello\n").await);

    // Pids lists the init.
    let pids = shim.pids(&b.id).await;
    assert!(pids.processes.iter().any(|p| p.pid == pid), "{pids:?}");

    // Stats answers with cgroup metrics.
    let mut sr = api::StatsRequest::new();
    sr.id = b.id.clone();
    let stats = shim.client.stats(ctx(), &sr).await.unwrap();
    assert!(
        stats.stats.type_url.contains("io.containerd.cgroups"),
        "{}",
        stats.stats.type_url
    );

    // Pause / resume.
    shim.pause(&b.id).await.unwrap();
    assert_eq!(shim.status(&b.id, "").await, api::Status::PAUSED);
    shim.resume(&b.id).await.unwrap();
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);

    // The v2 service name answers too (containerd 1.x).
    let mut req = ttrpc::Request::new();
    req.service = "containerd.task.v2.Task".into();
    req.method = "Connect".into();
    req.payload = protobuf::Message::write_to_bytes(&api::ConnectRequest::new()).unwrap();
    req.timeout_nano = 5_000_000_000;
    let raw = ttrpc::asynchronous::Client::connect(&shim.address)
        .await
        .unwrap();
    let resp = raw.request(req).await.unwrap();
    let cr: api::ConnectResponse = protobuf::Message::parse_from_bytes(&resp.payload).unwrap();
    assert_eq!(cr.shim_pid, shim.pids[0]);

    // Update resources through the runtime.
    let mut ur = api::UpdateTaskRequest::new();
    ur.id = b.id.clone();
    let mut res = protobuf::well_known_types::any::Any::new();
    res.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
    res.value = br#"{"memory":{"limit":33554432,"swap":33554432}}"#.to_vec();
    ur.resources = Some(res).into();
    shim.client.update(ctx(), &ur).await.unwrap();
    let limit = format!(
        "/sys/fs/cgroup/memory/crust-shim-test-{}/memory.limit_in_bytes",
        b.id
    );
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        assert_eq!(std::fs::read_to_string(&limit).unwrap().trim(), "33554432");
    }

    shim.kill(&b.id, "", 9).await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 137);
    let st = shim.state(&b.id, "").await.unwrap();
    assert_eq!(st.status.enum_value_or_default(), api::Status::STOPPED);
    assert_eq!(st.exit_status, 137);
    assert!(st.exited_at.seconds > 0);
    let d = shim.delete(&b.id, "").await.unwrap();
    assert_eq!(d.exit_status, 137);
    assert_eq!(d.pid, pid);
    for t in [
        "/tasks/create",
        "/tasks/start",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ] {
        assert!(
            shim.wait_event(t, 1).await,
            "missing {t}: {:?}",
            shim.events()
        );
    }
    // Last container deleted: the shim leaves by itself.
    let spid = shim.pids[0];
    assert!(eventually(|| !pid_alive(spid)).await, "shim still running");
}

#[tokio::test]
async fn exec_exit_codes_and_output() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sleep", "100"], &SpecOpts::default()).await;
    shim.run(&b).await;

    shim.exec(&b.id, "e3", &["sh", "-c", "exit 3"], ["", "", ""], false)
        .await
        .unwrap();
    let st = shim.state(&b.id, "e3").await.unwrap();
    assert_eq!(st.status.enum_value_or_default(), api::Status::CREATED);
    let xpid = shim.start_task(&b.id, "e3").await.unwrap();
    assert!(xpid > 0);
    assert_eq!(shim.wait(&b.id, "e3").await.unwrap(), 3);
    assert_eq!(shim.state(&b.id, "e3").await.unwrap().exit_status, 3);

    let out = shim.path("exec-out");
    let err = shim.path("exec-err");
    let (o, e) = (
        format!("file://{}", out.display()),
        format!("file://{}", err.display()),
    );
    shim.exec(
        &b.id,
        "e0",
        &["sh", "-c", "echo to-out; echo to-err >&2"],
        ["", &o, &e],
        false,
    )
    .await
    .unwrap();
    shim.start_task(&b.id, "e0").await.unwrap();
    assert_eq!(shim.wait(&b.id, "e0").await.unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "to-out\n");
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "to-err\n");

    // A long-running exec killed by signal.
    shim.exec(&b.id, "ek", &["sleep", "100"], ["", "", ""], false)
        .await
        .unwrap();
    let ekpid = shim.start_task(&b.id, "ek").await.unwrap();
    // Pids names the exec's process by its exec id (containerd's ProcessDetails); the
    // init has no info.
    let pids = shim.pids(&b.id).await;
    let ek = pids.processes.iter().find(|p| p.pid == ekpid).unwrap();
    assert_eq!(ek.info.type_url, "containerd.runc.v1.ProcessDetails");
    let details: protobuf::well_known_types::empty::Empty =
        protobuf::Message::parse_from_bytes(&ek.info.value).unwrap();
    let fields: Vec<_> = details.special_fields.unknown_fields().iter().collect();
    assert!(
        matches!(
            fields[..],
            [(1, protobuf::UnknownValueRef::LengthDelimited(b"ek"))]
        ),
        "{fields:?}"
    );
    let init_pid = shim.state(&b.id, "").await.unwrap().pid;
    let init = pids.processes.iter().find(|p| p.pid == init_pid).unwrap();
    assert!(init.info.is_none(), "{init:?}");
    assert_eq!(pids.processes.len(), 2, "{pids:?}");
    shim.kill(&b.id, "ek", 15).await.unwrap();
    assert_eq!(shim.wait(&b.id, "ek").await.unwrap(), 128 + 15);

    // A missing binary fails at Start with a clear error, and the exec can be deleted.
    shim.exec(&b.id, "enf", &["/no/such/binary"], ["", "", ""], false)
        .await
        .unwrap();
    let e = shim.start_task(&b.id, "enf").await;
    if let Err(e) = &e {
        assert_ne!(code(e), Code::OK);
    } else {
        assert_eq!(shim.wait(&b.id, "enf").await.unwrap(), 127);
    }

    for x in ["e3", "e0", "ek"] {
        let d = shim.delete(&b.id, x).await.unwrap();
        assert!(d.exited_at.seconds > 0);
        assert_eq!(err_code(shim.state(&b.id, x).await), Code::NOT_FOUND);
    }
    assert!(
        shim.wait_event("/tasks/exec-added", 4).await,
        "{:?}",
        shim.events()
    );
    assert!(
        shim.wait_event("/tasks/exec-started", 3).await,
        "{:?}",
        shim.events()
    );
    shim.kill_and_delete(&b.id).await;
}

#[tokio::test]
async fn two_containers_share_one_shim() {
    if !is_root() {
        return;
    }
    let pod = unique("pod");
    let o = SpecOpts {
        sandbox_id: Some(pod.clone()),
        ..Default::default()
    };
    let (mut shim, a) = Shim::start(&["sleep", "100"], &o).await;
    let b = shim.bundle(&["sleep", "100"], &o);
    // The second container's start finds the same shim.
    let addr_b = start_shim(&shim.state_dir, &shim.events, &b);
    assert_eq!(addr_b, shim.address);
    let c = shim.bundle(&["sleep", "100"], &SpecOpts::default());
    assert_ne!(start_shim(&shim.state_dir, &shim.events, &c), shim.address);
    // (c's shim has no containers; it exits on Shutdown.)
    let cc = connect(&start_shim(&shim.state_dir, &shim.events, &c)).await;
    let _ = cc.shutdown(ctx(), &api::ShutdownRequest::new()).await;

    shim.create(&a, ["", "", ""], false).await.unwrap();
    shim.create(&b, ["", "", ""], false).await.unwrap();
    shim.start_task(&a.id, "").await.unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    shim.kill(&a.id, "", 9).await.unwrap();
    assert_eq!(shim.wait(&a.id, "").await.unwrap(), 137);
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);
    shim.delete(&a.id, "").await.unwrap();
    // Shutdown with a live container is ignored.
    shim.client
        .shutdown(ctx(), &api::ShutdownRequest::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pid_alive(shim.pids[0]));
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);
    shim.kill_and_delete(&b.id).await;
    let spid = shim.pids[0];
    assert!(eventually(|| !pid_alive(spid)).await, "shim did not exit");
}

#[tokio::test]
async fn reconnect_after_client_goes_away() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sleep", "100"], &SpecOpts::default()).await;
    let pid = shim.run(&b).await;
    // The shim is detached: own session, not our child, not in our cgroup.
    let spid = shim.pids[0];
    let stat = std::fs::read_to_string(format!("/proc/{spid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    let (ppid, sid): (u32, u32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    assert_ne!(ppid, std::process::id());
    assert_eq!(sid, spid, "shim is not a session leader");
    let my_mem = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let shim_mem = std::fs::read_to_string(format!("/proc/{spid}/cgroup")).unwrap();
    let mem = |s: &str| {
        s.lines()
            .find(|l| l.contains(":memory:"))
            .map(str::to_string)
    };
    if mem(&my_mem).is_some_and(|m| !m.ends_with(":/")) {
        assert_ne!(mem(&my_mem), mem(&shim_mem));
    }

    // The client disconnects; the container dies while nobody is connected.
    let address = shim.address.clone();
    let old = std::mem::replace(&mut shim.client, connect(&address).await);
    drop(old);
    // SAFETY: kill has no memory-safety preconditions; pid is the test's container.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A brand-new client gets the complete state.
    let fresh = Shim::reconnect(&address).await;
    let mut sr = api::StateRequest::new();
    sr.id = b.id.clone();
    let st = fresh.state(ctx(), &sr).await.unwrap();
    assert_eq!(st.status.enum_value_or_default(), api::Status::STOPPED);
    assert_eq!(st.exit_status, 137);
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 137);
    let mut cr = api::ConnectRequest::new();
    cr.id = b.id.clone();
    let c = fresh.connect(ctx(), &cr).await.unwrap();
    assert_eq!((c.shim_pid, c.task_pid), (spid, pid));
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sleep", "100"], &SpecOpts::default()).await;
    shim.run(&b).await;

    assert_eq!(err_code(shim.state("nope", "").await), Code::NOT_FOUND);
    assert_eq!(err_code(shim.state(&b.id, "nope").await), Code::NOT_FOUND);
    assert_eq!(err_code(shim.kill("nope", "", 9).await), Code::NOT_FOUND);
    assert_eq!(err_code(shim.start_task("nope", "").await), Code::NOT_FOUND);
    // Same id again.
    assert_eq!(
        err_code(shim.create(&b, ["", "", ""], false).await),
        Code::ALREADY_EXISTS
    );
    // Missing bundle.
    let mut missing = shim.bundle(&["true"], &SpecOpts::default());
    missing.dir = shim.path("no-such-bundle");
    let e = shim
        .create(&missing, ["", "", ""], false)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::INVALID_ARGUMENT);
    assert_eq!(err_code(shim.state(&missing.id, "").await), Code::NOT_FOUND);
    // Unsupported stdio.
    let other = shim.bundle(&["true"], &SpecOpts::default());
    let e = shim
        .create(&other, ["", "http://x/y", ""], false)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::INVALID_ARGUMENT);
    assert_eq!(err_code(shim.state(&other.id, "").await), Code::NOT_FOUND);
    // Exec id reuse.
    shim.exec(&b.id, "x", &["true"], ["", "", ""], false)
        .await
        .unwrap();
    let e = shim
        .exec(&b.id, "x", &["true"], ["", "", ""], false)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::ALREADY_EXISTS);
    // Delete of a running container.
    assert_eq!(
        err_code(shim.delete(&b.id, "").await),
        Code::FAILED_PRECONDITION
    );
    // Start twice.
    assert_eq!(
        err_code(shim.start_task(&b.id, "").await),
        Code::FAILED_PRECONDITION
    );
    // Kill of a stopped process.
    shim.start_task(&b.id, "x").await.unwrap();
    assert_eq!(shim.wait(&b.id, "x").await.unwrap(), 0);
    assert_eq!(err_code(shim.kill(&b.id, "x", 9).await), Code::NOT_FOUND);
    // Nothing changed: the container still runs.
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);
    shim.kill(&b.id, "", 9).await.unwrap();
    shim.wait(&b.id, "").await.unwrap();
    assert_eq!(err_code(shim.kill(&b.id, "", 9).await), Code::NOT_FOUND);
    assert_eq!(
        code(
            &shim
                .exec(&b.id, "y", &["true"], ["", "", ""], false)
                .await
                .unwrap_err()
        ),
        Code::FAILED_PRECONDITION
    );
    shim.delete(&b.id, "").await.unwrap();
    assert_eq!(err_code(shim.delete(&b.id, "").await), Code::NOT_FOUND);
}

/// A pod's shim started for the sandbox id before any container exists (bundle without
/// config.json), with `-keep-empty`: it idles without containers, survives the deletion
/// of its last container, serves a new one, and exits on Shutdown.
/// Starts a keep-empty shim for a new sandbox id (as crustd does at RunPodSandbox), with
/// `env` added; returns (sandbox id, address, client, shim pid), the pid recorded in `shim`.
async fn start_sandbox_shim(
    shim: &mut Shim,
    env: &[(&str, &str)],
) -> (String, String, TaskClient, u32) {
    let sandbox = unique("sb");
    let sb_dir = shim.path(&sandbox);
    std::fs::create_dir_all(&sb_dir).unwrap();
    let out = std::process::Command::new(shim_bin())
        .env("CRUST_SHIM_KEEP_EMPTY", "1")
        .envs(env.iter().copied())
        .args(["-namespace", NS, "-address", "/run/crust-test-none.sock"])
        .args([
            "-publish-binary",
            shim.events.with_extension("sh").to_str().unwrap(),
        ])
        .args(["-id", &sandbox, "-state-dir"])
        .arg(&shim.state_dir)
        .args(["-runtime", &runtime(), "start"])
        .current_dir(&sb_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let addr = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let client = connect(&addr).await;
    let pid = client
        .connect(ctx(), &api::ConnectRequest::new())
        .await
        .unwrap()
        .shim_pid;
    shim.pids.push(pid);
    (sandbox, addr, client, pid)
}

#[tokio::test]
async fn keep_empty_shim_started_for_a_sandbox() {
    if !is_root() {
        return;
    }
    let (mut shim, _unused) = Shim::start(&["true"], &SpecOpts::default()).await;
    let (sandbox, addr, client, pid) = start_sandbox_shim(&mut shim, &[]).await;
    assert_ne!(addr, shim.address);
    // Idle with no container (Shutdown only comes at pod removal).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(pid_alive(pid));
    let o = SpecOpts {
        sandbox_id: Some(sandbox.clone()),
        ..Default::default()
    };
    for round in 0..2 {
        let b = shim.bundle(&["sleep", "100"], &o);
        // The container's own `start` finds the sandbox's shim.
        assert_eq!(start_shim(&shim.state_dir, &shim.events, &b), addr);
        shim.ids.push(b.id.clone());
        let mut r = api::CreateTaskRequest::new();
        r.id = b.id.clone();
        r.bundle = b.dir.display().to_string();
        client.create(ctx(), &r).await.unwrap();
        let mut s = api::StartRequest::new();
        s.id = b.id.clone();
        client.start(ctx(), &s).await.unwrap();
        let mut k = api::KillRequest::new();
        k.id = b.id.clone();
        k.signal = 9;
        client.kill(ctx(), &k).await.unwrap();
        let mut w = api::WaitRequest::new();
        w.id = b.id.clone();
        assert_eq!(client.wait(ctx(), &w).await.unwrap().exit_status, 137);
        let mut d = api::DeleteRequest::new();
        d.id = b.id.clone();
        client.delete(ctx(), &d).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            pid_alive(pid),
            "keep-empty shim exited after delete (round {round})"
        );
    }
    client
        .shutdown(ctx(), &api::ShutdownRequest::new())
        .await
        .unwrap();
    assert!(eventually(|| !pid_alive(pid)).await, "no exit on Shutdown");
}

/// Removes the test's shim cgroup from every hierarchy (after its shim exited), also on failure.
struct ShimCgroup(String);

impl Drop for ShimCgroup {
    fn drop(&mut self) {
        let root = std::path::Path::new("/sys/fs/cgroup");
        let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(&self.0))
            .chain(std::iter::once(root.join(&self.0)))
            .filter(|d| d.is_dir())
            .collect();
        // A just-killed shim may take a moment to leave (EBUSY until then).
        for _ in 0..100 {
            dirs.retain(|d| std::fs::remove_dir(d).is_err() && d.is_dir());
            if dirs.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The shim answers at once and moves itself into `-shim-cgroup` in the background (the move
/// can wait for an RCU grace period, so it is kept off the first request's path).
#[tokio::test]
async fn shim_moves_into_its_shim_cgroup_in_the_background() {
    if !is_root() {
        return;
    }
    // Declared first so it is dropped last, after the harness killed the shims.
    let cg = ShimCgroup(unique("crust-shim-test-cg"));
    let (mut shim, _unused) = Shim::start(&["true"], &SpecOpts::default()).await;
    let (_, _, client, pid) =
        start_sandbox_shim(&mut shim, &[("CRUST_SHIM_CGROUP", cg.0.as_str())]).await;
    let want = format!("/{}", cg.0);
    let in_cgroup = || {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        // Every hierarchy (v1 controllers, named v1 and the cgroup2 one) shows the shim cgroup.
        !text.is_empty() && text.lines().all(|l| l.ends_with(&want))
    };
    assert!(
        eventually(in_cgroup).await,
        "shim not moved: {}",
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
    );
    client
        .shutdown(ctx(), &api::ShutdownRequest::new())
        .await
        .unwrap();
    assert!(eventually(|| !pid_alive(pid)).await, "no exit on Shutdown");
}

/// The runtime no longer knows the container (a cleanup after a crash removed it): Delete
/// still forgets it, so the shim can exit. It used to fail with the runtime's "container
/// does not exist" and keep the container in its table for good (the shim never exited).
#[tokio::test]
async fn delete_forgets_a_container_the_runtime_already_removed() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sleep", "100"], &SpecOpts::default()).await;
    let pid = shim.create(&b, ["", "", ""], false).await.unwrap();
    let root = shim.state_dir.join("runtime").join(NS);
    let st = std::process::Command::new(&shim.runtime)
        .arg("--root")
        .arg(&root)
        .args(["delete", "--force", &b.id])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        eventually(|| !pid_alive(pid)).await,
        "init {pid} still alive"
    );
    shim.delete(&b.id, "")
        .await
        .expect("Delete of a container the runtime already removed");
    assert_eq!(err_code(shim.state(&b.id, "").await), Code::NOT_FOUND);
}
