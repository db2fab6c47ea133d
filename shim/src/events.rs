//! Task events (create, start, exit, oom, exec added/started, paused/resumed, delete)
//! sent to the daemon, in order, by one publisher task.
//!
//! Transport, chosen once at start-up:
//! - `TTRPC_ADDRESS` set (containerd ≥ 1.5 sets it; crustd sets it to its own socket):
//!   `containerd.services.events.ttrpc.v1.Events/Forward` over ttrpc, one connection kept
//!   open and re-dialled on failure. This is crustd's in-process event stream.
//! - else `-publish-binary` given: containerd's older way, exec
//!   `<binary> --address <address> publish --topic <t> --namespace <ns>` with the event,
//!   a protobuf `Any`, on stdin.
//! - else events are dropped (clients can still use Wait and State).
//!
//! An event that cannot be delivered after a few attempts is dropped and logged.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::EventsClient;
use protobuf::well_known_types::any::Any;
use protobuf::Message;
use tokio::sync::mpsc;

use crate::reaper::Reaper;

/// What the publisher task is handed: an event, or a flush to answer once every event
/// queued before it has been delivered or dropped.
enum Item {
    Event(&'static str, Any),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Sends events to the publisher task.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<Item>,
}

/// Where events go.
#[derive(Debug, Clone)]
pub enum Sink {
    Ttrpc(String),
    Binary { binary: PathBuf, address: String },
    Discard,
}

impl Publisher {
    pub fn start(sink: Sink, namespace: String, reaper: Reaper) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
        tokio::spawn(async move {
            let mut client: Option<EventsClient> = None;
            while let Some(item) = rx.recv().await {
                let (topic, any) = match item {
                    Item::Event(topic, any) => (topic, any),
                    Item::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                for attempt in 0..3 {
                    let ok = match &sink {
                        Sink::Discard => true,
                        Sink::Ttrpc(addr) => {
                            forward(&mut client, addr, &namespace, topic, &any).await
                        }
                        Sink::Binary { binary, address } => {
                            exec(&reaper, binary, address, &namespace, topic, &any).await
                        }
                    };
                    if ok {
                        break;
                    }
                    if attempt == 2 {
                        eprintln!("crust-shim: dropping event {topic}");
                    }
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        });
        Publisher { tx }
    }

    /// Queues `m` under `topic`. The type URL is the proto full name, written out
    /// rather than taken from the descriptor: building rust-protobuf's reflection data
    /// costs a few hundred KB of heap the shim does not otherwise need.
    fn send(&self, topic: &'static str, type_name: &str, m: &impl Message) {
        let mut any = Any::new();
        any.type_url = format!("containerd.events.{type_name}");
        any.value = m.write_to_bytes().unwrap_or_default();
        let _ = self.tx.send(Item::Event(topic, any));
    }

    /// Returns once every event queued so far has been delivered (or given up on).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Item::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    pub fn task_create(&self, e: ev::TaskCreate) {
        self.send("/tasks/create", "TaskCreate", &e);
    }
    pub fn task_start(&self, e: ev::TaskStart) {
        self.send("/tasks/start", "TaskStart", &e);
    }
    pub fn task_exit(&self, e: ev::TaskExit) {
        self.send("/tasks/exit", "TaskExit", &e);
    }
    pub fn task_oom(&self, e: ev::TaskOOM) {
        self.send("/tasks/oom", "TaskOOM", &e);
    }
    pub fn task_delete(&self, e: ev::TaskDelete) {
        self.send("/tasks/delete", "TaskDelete", &e);
    }
    pub fn exec_added(&self, e: ev::TaskExecAdded) {
        self.send("/tasks/exec-added", "TaskExecAdded", &e);
    }
    pub fn exec_started(&self, e: ev::TaskExecStarted) {
        self.send("/tasks/exec-started", "TaskExecStarted", &e);
    }
    pub fn paused(&self, e: ev::TaskPaused) {
        self.send("/tasks/paused", "TaskPaused", &e);
    }
    pub fn resumed(&self, e: ev::TaskResumed) {
        self.send("/tasks/resumed", "TaskResumed", &e);
    }
}

async fn forward(
    client: &mut Option<EventsClient>,
    addr: &str,
    ns: &str,
    topic: &str,
    any: &Any,
) -> bool {
    if client.is_none() {
        let a = if addr.starts_with("unix://") {
            addr.to_string()
        } else {
            format!("unix://{addr}")
        };
        match ttrpc::asynchronous::Client::connect(&a).await {
            Ok(c) => *client = Some(EventsClient::new(c)),
            Err(_) => return false,
        }
    }
    let Some(c) = client.as_ref() else {
        return false;
    };
    let mut env = Envelope::new();
    env.timestamp = Some(crate::task::timestamp(std::time::SystemTime::now())).into();
    env.namespace = ns.to_string();
    env.topic = topic.to_string();
    env.event = Some(any.clone()).into();
    let mut req = ForwardRequest::new();
    req.envelope = Some(env).into();
    let ctx = ttrpc::context::with_timeout(Duration::from_secs(5).as_nanos() as i64);
    if c.forward(ctx, &req).await.is_ok() {
        true
    } else {
        *client = None;
        false
    }
}

async fn exec(
    reaper: &Reaper,
    binary: &PathBuf,
    address: &str,
    ns: &str,
    topic: &str,
    any: &Any,
) -> bool {
    let Ok(data) = any.write_to_bytes() else {
        return false;
    };
    let mut cmd = Command::new(binary);
    cmd.args([
        "--address",
        address,
        "publish",
        "--topic",
        topic,
        "--namespace",
        ns,
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let Ok((mut child, exit)) = reaper.spawn(&mut cmd) else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // Events are small (< pipe buffer), so this write does not block.
        let _ = stdin.write_all(&data);
    }
    drop(child);
    matches!(tokio::time::timeout(Duration::from_secs(10), exit).await, Ok(Ok(e)) if e.status == 0)
}
