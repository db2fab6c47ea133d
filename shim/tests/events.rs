//! Events over ttrpc (`TTRPC_ADDRESS`, crustd's and containerd ≥ 1.5's way) and the
//! `delete` bootstrap after a shim died. Root only.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use containerd_shim_protos::api;
use containerd_shim_protos::events::task::{TaskExit, TaskStart};
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{create_events, Events};
use protobuf::well_known_types::empty::Empty;
use protobuf::Message;
use ttrpc::asynchronous::TtrpcContext;

/// (namespace, topic, type URL, payload) of one forwarded event.
type Event = (String, String, String, Vec<u8>);

#[derive(Default)]
struct Collector(Mutex<Vec<Event>>);

#[async_trait]
impl Events for Collector {
    async fn forward(&self, _: &TtrpcContext, r: ForwardRequest) -> ttrpc::Result<Empty> {
        let e = r.envelope.unwrap();
        let any = e.event.unwrap();
        self.0
            .lock()
            .unwrap()
            .push((e.namespace, e.topic, any.type_url, any.value));
        Ok(Empty::new())
    }
}

#[tokio::test]
async fn events_forwarded_over_ttrpc() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("crust-shim-ev-")
        .tempdir_in("/tmp")
        .unwrap();
    let sock = tmp.path().join("events.sock");
    let collector = Arc::new(Collector::default());
    let mut server = ttrpc::asynchronous::Server::new()
        .bind(&format!("unix://{}", sock.display()))
        .unwrap()
        .register_service(create_events(collector.clone()));
    server.start().await.unwrap();

    let (mut shim, b) = Shim::start(&["sh", "-c", "exit 5"], &SpecOpts::default()).await;
    // Replace the shim started by the harness with one that forwards over ttrpc.
    let b2 = shim.bundle(&["sh", "-c", "exit 5"], &SpecOpts::default());
    let addr = start_shim_env(
        &shim.state_dir,
        &shim.events,
        &b2,
        Some(&format!("unix://{}", sock.display())),
    );
    let client = connect(&addr).await;
    let pid = client
        .connect(ctx(), &api::ConnectRequest::new())
        .await
        .unwrap()
        .shim_pid;
    shim.pids.push(pid);
    let first = std::mem::replace(&mut shim.client, client);
    drop(first);
    drop(b);
    let cpid = shim.run(&b2).await;
    assert_eq!(shim.wait(&b2.id, "").await.unwrap(), 5);
    let got = || {
        collector
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.1 == "/tasks/exit")
    };
    assert!(eventually(got).await, "no exit event over ttrpc");
    let evs = collector.0.lock().unwrap().clone();
    let topics: Vec<&str> = evs.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(topics, ["/tasks/create", "/tasks/start", "/tasks/exit"]);
    assert!(evs.iter().all(|e| e.0 == NS));
    let start = &evs[1];
    assert_eq!(start.2, "containerd.events.TaskStart");
    assert_eq!(TaskStart::parse_from_bytes(&start.3).unwrap().pid, cpid);
    let exit = TaskExit::parse_from_bytes(&evs[2].3).unwrap();
    assert_eq!(
        (exit.container_id.as_str(), exit.exit_status),
        (b2.id.as_str(), 5)
    );
    assert!(exit.exited_at.seconds > 0);
    shim.delete(&b2.id, "").await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn delete_subcommand_cleans_up_after_a_dead_shim() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sleep", "100"], &SpecOpts::default()).await;
    let cpid = shim.run(&b).await;
    // SAFETY: kill has no memory-safety preconditions; the pid is our shim's.
    unsafe { libc::kill(shim.pids[0] as i32, libc::SIGKILL) };
    let out = Command::new(shim_bin())
        .args([
            "-namespace",
            NS,
            "-address",
            "/run/crust-test-none.sock",
            "-id",
            &b.id,
        ])
        .args(["-bundle", b.dir.to_str().unwrap()])
        .args([
            "-state-dir",
            shim.state_dir.to_str().unwrap(),
            "-runtime",
            &runtime(),
        ])
        .arg("delete")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = api::DeleteResponse::parse_from_bytes(&out.stdout).unwrap();
    assert_eq!(resp.exit_status, 137);
    assert!(resp.exited_at.seconds > 0);
    // The container is gone from the runtime, and its process is dead.
    assert!(
        eventually(|| !pid_alive(cpid)).await,
        "container still running"
    );
    let st = Command::new(runtime())
        .arg("--root")
        .arg(shim.state_dir.join("runtime").join(NS))
        .args(["state", &b.id])
        .output()
        .unwrap();
    assert!(!st.status.success(), "container still known to the runtime");
}

/// Encodes `containerd.runc.v1.Options{binary_name}` (field 6).
fn runc_options(binary: &str) -> protobuf::well_known_types::any::Any {
    let mut any = protobuf::well_known_types::any::Any::new();
    any.type_url = "containerd.runc.v1.Options".into();
    any.value = vec![0x32, binary.len() as u8];
    any.value.extend_from_slice(binary.as_bytes());
    any
}

#[tokio::test]
async fn runtime_binary_from_create_options() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["true"], &SpecOpts::default()).await;
    let mut r = api::CreateTaskRequest::new();
    r.id = b.id.clone();
    r.bundle = b.dir.display().to_string();
    r.options = Some(runc_options("/bin/false")).into();
    let e = shim.client.create(ctx(), &r).await.unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::INTERNAL, "{e:?}");
    assert_eq!(
        err_code(shim.state(&b.id, "").await),
        ttrpc::Code::NOT_FOUND
    );
    // The same request naming the real runtime works.
    let rt = runtime();
    r.options = Some(runc_options(&rt)).into();
    shim.client.create(ctx(), &r).await.unwrap();
    shim.ids.push(b.id.clone());
    shim.start_task(&b.id, "").await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    let rec = std::fs::read_to_string(b.dir.join(crust_shim::task::RUNTIME_FILE)).unwrap();
    assert!(rec.contains(&rt), "{rec}");
    shim.delete(&b.id, "").await.unwrap();
}
