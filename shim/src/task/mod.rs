//! The containerd Task service (shim v2 API) over the shim's containers.
//!
//! [`Service`] owns every container of the pod and their processes. Each request is
//! handled in its verb's file; this module holds the shared state, the process state
//! machine and exit handling.
//!
//! Process states: `Created` (init after `runtime create`, exec after Exec) →
//! `Running` (after Start) ⇄ `Paused` → `Stopped` (exit reaped and its output drained).
//! Invariants: the state lock is never held across an await; an exit is recorded exactly
//! once; a request that fails changes nothing it has not undone.

mod checkpoint;
pub mod control;
pub mod create;
mod delete;
mod exec;
mod kill;
mod query;
mod start;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::shim_async::Task;
use protobuf::well_known_types::empty::Empty;
use protobuf::well_known_types::timestamp::Timestamp;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use ttrpc::asynchronous::TtrpcContext;

use crate::error::{Result, ShimError};
use crate::events::Publisher;
use crate::memory::Trimmer;
use crate::reaper::{Exit, Reaper};
use crate::runtime::Runtime;
use crate::stdio::ProcessStdio;

/// How long an exit waits for the process's output to drain before it is reported.
const IO_DRAIN: Duration = Duration::from_secs(2);
/// Exits of not-yet-known pids kept for a racing create/exec.
const UNCLAIMED_MAX: usize = 256;

/// Lifecycle state of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Created,
    Running,
    Paused,
    Stopped,
}

impl ProcState {
    fn name(self) -> &'static str {
        match self {
            ProcState::Created => "created",
            ProcState::Running => "running",
            ProcState::Paused => "paused",
            ProcState::Stopped => "stopped",
        }
    }
    fn proto(self) -> api::Status {
        match self {
            ProcState::Created => api::Status::CREATED,
            ProcState::Running => api::Status::RUNNING,
            ProcState::Paused => api::Status::PAUSED,
            ProcState::Stopped => api::Status::STOPPED,
        }
    }
}

/// One process: a container's init or an exec.
pub struct Proc {
    pub pid: i32,
    pub state: ProcState,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub exit: Option<(u32, SystemTime)>,
    /// Set while the exit is reaped but the output is still draining.
    pub exiting: bool,
    pub exited: watch::Sender<Option<(u32, SystemTime)>>,
    pub stdio: ProcessStdio,
    /// A Start is in progress: an exit is held back until the start event is out.
    pub starting: bool,
    pub deferred_exit: Option<ev::TaskExit>,
}

impl Proc {
    fn new(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Self {
        Proc {
            pid: 0,
            state: ProcState::Created,
            stdin: stdin.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            terminal,
            exit: None,
            exiting: false,
            exited: watch::channel(None).0,
            stdio: ProcessStdio::default(),
            starting: false,
            deferred_exit: None,
        }
    }
}

/// An exec: its process and the runtime-spec Process JSON it runs.
pub struct Exec {
    pub proc: Proc,
    pub spec: Vec<u8>,
}

/// A container and its processes.
pub struct Container {
    pub bundle: PathBuf,
    pub runtime: Runtime,
    pub rootfs_mounted: bool,
    pub init: Proc,
    pub execs: HashMap<String, Exec>,
    pub oom: Option<JoinHandle<()>>,
    /// The init's cgroup, found at create; kept so Stats (and its OOM-kill count)
    /// still answer after the init exited, until Delete.
    pub cgroup: Option<crust_cgroups::Cgroup>,
    /// Created from a checkpoint (CRIU images in this directory): Start restores it.
    pub restore: Option<PathBuf>,
}

impl Container {
    fn proc(&self, id: &str, exec_id: &str) -> Result<&Proc> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .map(|e| &e.proc)
            .ok_or_else(|| ShimError::ExecNotFound {
                id: id.into(),
                exec_id: exec_id.into(),
            })
    }
    fn proc_mut(&mut self, id: &str, exec_id: &str) -> Result<&mut Proc> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .map(|e| &mut e.proc)
            .ok_or_else(|| ShimError::ExecNotFound {
                id: id.into(),
                exec_id: exec_id.into(),
            })
    }
}

#[derive(Default)]
pub struct State {
    pub containers: HashMap<String, Container>,
    /// Ids whose Create is in progress.
    pub creating: HashSet<String>,
    pub unclaimed: VecDeque<Exit>,
    /// Set once the last container is deleted: the shim is on its way out.
    pub exiting: bool,
}

impl State {
    fn container(&self, id: &str) -> Result<&Container> {
        self.containers
            .get(id)
            .ok_or_else(|| ShimError::ContainerNotFound(id.into()))
    }
    fn container_mut(&mut self, id: &str) -> Result<&mut Container> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| ShimError::ContainerNotFound(id.into()))
    }
}

/// Settings fixed at shim start.
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    /// Runtime binary when the request's options name none.
    pub runtime_binary: String,
    /// Runtime root when the request's options name none.
    pub runtime_root: PathBuf,
    /// Directory for console sockets (short path, under the state dir).
    pub console_dir: PathBuf,
    /// Do not exit when the last container is deleted (only on Shutdown).
    pub keep_empty: bool,
}

/// The Task service. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    pub reaper: Reaper,
    pub events: Publisher,
    pub cfg: Config,
    /// Drops code pages once requests stop (see [`crate::memory`]).
    pub trimmer: Trimmer,
    /// Notified when the shim should exit (last container deleted, or Shutdown).
    pub shutdown: Arc<Notify>,
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}

impl Service {
    pub fn new(
        cfg: Config,
        reaper: Reaper,
        events: Publisher,
        shutdown: Arc<Notify>,
        exits: mpsc::UnboundedReceiver<Exit>,
    ) -> Self {
        let s = Service {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                reaper,
                events,
                cfg,
                trimmer: Trimmer::start(),
                shutdown,
            }),
        };
        let me = s.clone();
        tokio::spawn(async move {
            let mut exits = exits;
            while let Some(e) = exits.recv().await {
                me.on_exit(e);
            }
        });
        s
    }

    /// Marks a request in progress; when the guard drops the idle trimmer is poked.
    fn busy(&self) -> Busy<'_> {
        Busy(&self.inner.trimmer)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug; keep serving with the data as is.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of containers (the shim may exit at zero).
    pub fn container_count(&self) -> usize {
        self.lock().containers.len()
    }

    /// A reaped child: record it against its process, or keep it for a racing create.
    fn on_exit(&self, e: Exit) {
        let mut st = self.lock();
        let found = st.containers.iter_mut().find_map(|(id, c)| {
            if c.init.pid == e.pid && c.init.exit.is_none() && !c.init.exiting {
                return Some((id.clone(), String::new()));
            }
            c.execs.iter().find_map(|(xid, x)| {
                (x.proc.pid == e.pid && x.proc.exit.is_none() && !x.proc.exiting)
                    .then(|| (id.clone(), xid.clone()))
            })
        });
        match found {
            Some((id, exec_id)) => {
                drop(st);
                self.record_exit(&id, &exec_id, e);
            }
            None => {
                if st.unclaimed.len() >= UNCLAIMED_MAX {
                    st.unclaimed.pop_front();
                }
                st.unclaimed.push_back(e);
            }
        }
    }

    /// Called after a pid becomes known: handles an exit that was reaped before.
    pub(crate) fn claim_exit(&self, id: &str, exec_id: &str, pid: i32) {
        let e = {
            let mut st = self.lock();
            let Some(i) = st.unclaimed.iter().position(|e| e.pid == pid) else {
                return;
            };
            st.unclaimed.remove(i)
        };
        if let Some(e) = e {
            self.record_exit(id, exec_id, e);
        }
    }

    /// Drains the process's output (bounded), then marks it stopped and reports the exit.
    fn record_exit(&self, id: &str, exec_id: &str, e: Exit) {
        let outputs = {
            let mut st = self.lock();
            let Ok(c) = st.container_mut(id) else { return };
            let Ok(p) = c.proc_mut(id, exec_id) else {
                return;
            };
            p.exiting = true;
            p.stdio.close_stdin();
            std::mem::take(&mut p.stdio.outputs)
        };
        let me = self.clone();
        let (id, exec_id) = (id.to_string(), exec_id.to_string());
        tokio::spawn(async move {
            let drain = futures_join_all(outputs);
            let _ = tokio::time::timeout(IO_DRAIN, drain).await;
            let exit_event = {
                let mut st = me.lock();
                let Ok(c) = st.container_mut(&id) else { return };
                if exec_id.is_empty() {
                    if let Some(h) = c.oom.take() {
                        // Let a pending OOM notification land first.
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            h.abort();
                        });
                    }
                }
                let Ok(p) = c.proc_mut(&id, &exec_id) else {
                    return;
                };
                p.exiting = false;
                p.state = ProcState::Stopped;
                p.exit = Some((e.status, e.at));
                p.stdio.console = None;
                p.exited.send_replace(Some((e.status, e.at)));
                let mut ex = ev::TaskExit::new();
                ex.container_id = id.clone();
                ex.id = if exec_id.is_empty() {
                    id.clone()
                } else {
                    exec_id.clone()
                };
                ex.pid = p.pid as u32;
                ex.exit_status = e.status;
                ex.exited_at = Some(timestamp(e.at)).into();
                if p.starting {
                    // Published by Start right after its start event.
                    p.deferred_exit = Some(ex);
                    return;
                }
                ex
            };
            me.inner.events.task_exit(exit_event);
        });
    }

    /// Marks a Start of `id`/`exec_id` as begun or finished. When finished, returns an
    /// exit that happened meanwhile, to be published after the start event.
    pub(crate) fn set_starting(&self, id: &str, exec_id: &str, on: bool) -> Option<ev::TaskExit> {
        let mut st = self.lock();
        let p = st.container_mut(id).ok()?.proc_mut(id, exec_id).ok()?;
        p.starting = on;
        if on {
            None
        } else {
            p.deferred_exit.take()
        }
    }

    /// Leaves the shim once no container is left (after `grace`, so replies get out).
    pub(crate) fn exit_if_empty(&self) {
        let mut st = self.lock();
        if st.containers.is_empty() && st.creating.is_empty() {
            st.exiting = true;
            drop(st);
            self.inner.shutdown.notify_one();
        }
    }
}

/// A Task request in progress (see [`Service::busy`]).
struct Busy<'a>(&'a Trimmer);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.poke();
    }
}

async fn futures_join_all(hs: Vec<JoinHandle<()>>) {
    for h in hs {
        let _ = h.await;
    }
}

fn empty() -> Empty {
    Empty::new()
}

/// How long a call about a container waits for that container's CreateTask to finish.
const SETTLE: Duration = Duration::from_secs(120);

impl Service {
    /// Waits while container `id` is being created (a CreateTask in flight), so that
    /// State, Start, Kill, Wait and Delete answer about the finished create. They used to
    /// answer NotFound: a crustd restarted during CreateContainer then forgot a container
    /// this shim went on to create, whose process, cgroup and runtime state were orphaned
    /// (and which kept the shim from ever exiting). Polled: the shim runs one thread and
    /// creates are rare and short.
    async fn settle(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        while self.lock().creating.contains(id) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl Task for Service {
    async fn state(
        &self,
        _: &TtrpcContext,
        r: api::StateRequest,
    ) -> ttrpc::Result<api::StateResponse> {
        let _busy = self.busy();
        self.settle(&r.id).await;
        Ok(self.do_state(&r.id, &r.exec_id)?)
    }
    async fn create(
        &self,
        _: &TtrpcContext,
        r: api::CreateTaskRequest,
    ) -> ttrpc::Result<api::CreateTaskResponse> {
        let _busy = self.busy();
        // In a task of its own: ttrpc drops a request's future when its client goes, and a
        // create dropped half-way (crustd killed during CreateContainer) left the id in
        // `creating` for good and the runtime's container unknown to this shim: an orphan
        // process, cgroup and runtime state, and calls about the id answering NotFound.
        let me = self.clone();
        match tokio::spawn(async move { me.do_create(r).await }).await {
            Ok(r) => Ok(r?),
            Err(e) => Err(ShimError::Io {
                op: "create task",
                path: PathBuf::new(),
                source: std::io::Error::other(e),
            }
            .into()),
        }
    }
    async fn start(
        &self,
        _: &TtrpcContext,
        r: api::StartRequest,
    ) -> ttrpc::Result<api::StartResponse> {
        let _busy = self.busy();
        self.settle(&r.id).await;
        Ok(self.do_start(&r.id, &r.exec_id).await?)
    }
    async fn delete(
        &self,
        _: &TtrpcContext,
        r: api::DeleteRequest,
    ) -> ttrpc::Result<api::DeleteResponse> {
        let _busy = self.busy();
        self.settle(&r.id).await;
        Ok(self.do_delete(&r.id, &r.exec_id).await?)
    }
    async fn pids(
        &self,
        _: &TtrpcContext,
        r: api::PidsRequest,
    ) -> ttrpc::Result<api::PidsResponse> {
        let _busy = self.busy();
        Ok(self.do_pids(&r.id).await?)
    }
    async fn pause(&self, _: &TtrpcContext, r: api::PauseRequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.do_pause(&r.id, true).await?;
        Ok(empty())
    }
    async fn resume(&self, _: &TtrpcContext, r: api::ResumeRequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.do_pause(&r.id, false).await?;
        Ok(empty())
    }
    async fn checkpoint(
        &self,
        _: &TtrpcContext,
        r: api::CheckpointTaskRequest,
    ) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.do_checkpoint(r).await?;
        Ok(empty())
    }
    async fn kill(&self, _: &TtrpcContext, r: api::KillRequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.settle(&r.id).await;
        self.do_kill(&r.id, &r.exec_id, r.signal, r.all).await?;
        Ok(empty())
    }
    async fn exec(&self, _: &TtrpcContext, r: api::ExecProcessRequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.do_exec(r)?;
        Ok(empty())
    }
    async fn resize_pty(&self, _: &TtrpcContext, r: api::ResizePtyRequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.do_resize(&r.id, &r.exec_id, r.width, r.height)?;
        Ok(empty())
    }
    async fn close_io(&self, _: &TtrpcContext, r: api::CloseIORequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.do_close_io(&r.id, &r.exec_id, r.stdin)?;
        Ok(empty())
    }
    async fn update(&self, _: &TtrpcContext, r: api::UpdateTaskRequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.do_update(r).await?;
        Ok(empty())
    }
    async fn wait(
        &self,
        _: &TtrpcContext,
        r: api::WaitRequest,
    ) -> ttrpc::Result<api::WaitResponse> {
        let _busy = self.busy();
        self.settle(&r.id).await;
        Ok(self.do_wait(&r.id, &r.exec_id).await?)
    }
    async fn stats(
        &self,
        _: &TtrpcContext,
        r: api::StatsRequest,
    ) -> ttrpc::Result<api::StatsResponse> {
        let _busy = self.busy();
        Ok(self.do_stats(&r.id)?)
    }
    async fn connect(
        &self,
        _: &TtrpcContext,
        r: api::ConnectRequest,
    ) -> ttrpc::Result<api::ConnectResponse> {
        let _busy = self.busy();
        Ok(self.do_connect(&r.id)?)
    }
    async fn shutdown(&self, _: &TtrpcContext, _: api::ShutdownRequest) -> ttrpc::Result<Empty> {
        let _busy = self.busy();
        self.exit_if_empty();
        Ok(empty())
    }
}
pub use create::RUNTIME_FILE;
