//! Start: `runtime start` for an init, `runtime exec` for a recorded exec.

use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;

use super::{ProcState, Service};
use crate::error::{Result, ShimError};
use crate::stdio::{self, StdioRequest};

impl Service {
    pub(super) async fn do_start(&self, id: &str, exec_id: &str) -> Result<api::StartResponse> {
        let mut resp = api::StartResponse::new();
        if exec_id.is_empty() {
            if let Some(images) = self.restore_of(id)? {
                return self.start_restore(id, &images).await;
            }
            let (runtime, pid) = {
                let st = self.lock();
                let c = st.container(id)?;
                if c.init.state != ProcState::Created || c.init.exiting {
                    return Err(ShimError::WrongState {
                        id: id.into(),
                        state: c.init.state.name(),
                        op: "start",
                    });
                }
                (c.runtime.clone(), c.init.pid)
            };
            self.set_starting(id, "", true);
            if let Err(e) = runtime.start(&self.inner.reaper, id).await {
                if let Some(exit) = self.set_starting(id, "", false) {
                    self.inner.events.task_exit(exit);
                }
                return Err(e);
            }
            if let Ok(c) = self.lock().container_mut(id) {
                if c.init.state == ProcState::Created {
                    c.init.state = ProcState::Running;
                }
            }
            let mut e = ev::TaskStart::new();
            e.container_id = id.into();
            e.pid = pid as u32;
            self.inner.events.task_start(e);
            if let Some(exit) = self.set_starting(id, "", false) {
                self.inner.events.task_exit(exit);
            }
            resp.pid = pid as u32;
            return Ok(resp);
        }

        let (runtime, bundle, spec, stdin, stdout, stderr, terminal) = {
            let st = self.lock();
            let c = st.container(id)?;
            if !matches!(c.init.state, ProcState::Running | ProcState::Paused) || c.init.exiting {
                return Err(ShimError::WrongState {
                    id: id.into(),
                    state: c.init.state.name(),
                    op: "start an exec in",
                });
            }
            let x = c
                .execs
                .get(exec_id)
                .ok_or_else(|| ShimError::ExecNotFound {
                    id: id.into(),
                    exec_id: exec_id.into(),
                })?;
            if x.proc.state != ProcState::Created || x.proc.pid != 0 {
                return Err(ShimError::WrongState {
                    id: exec_id.into(),
                    state: x.proc.state.name(),
                    op: "start",
                });
            }
            (
                c.runtime.clone(),
                c.bundle.clone(),
                x.spec.clone(),
                x.proc.stdin.clone(),
                x.proc.stdout.clone(),
                x.proc.stderr.clone(),
                x.proc.terminal,
            )
        };
        // Mark the exec as starting so a second Start is refused while this one runs.
        self.set_exec_pid(id, exec_id, -1);
        self.set_starting(id, exec_id, true);
        let req = StdioRequest {
            stdin: &stdin,
            stdout: &stdout,
            stderr: &stderr,
            terminal,
            id,
            namespace: &self.inner.cfg.namespace,
        };
        let run = async {
            let prepared = stdio::prepare(&req, &self.inner.reaper, &self.inner.cfg.console_dir)?;
            let (io, pending) = prepared.split();
            let pid = runtime
                .exec(&self.inner.reaper, id, &bundle, exec_id, &spec, io)
                .await?;
            Ok::<_, ShimError>((pid, pending.finish()))
        };
        let (pid, stdio) = match run.await {
            Ok(v) => v,
            Err(e) => {
                self.set_exec_pid(id, exec_id, 0);
                self.set_starting(id, exec_id, false);
                return Err(e);
            }
        };
        {
            let mut st = self.lock();
            if let Some(x) = st
                .containers
                .get_mut(id)
                .and_then(|c| c.execs.get_mut(exec_id))
            {
                x.proc.pid = pid;
                x.proc.state = ProcState::Running;
                match stdio {
                    Ok(s) => x.proc.stdio = s,
                    Err(e) => eprintln!("crust-shim: exec {exec_id} stdio: {e}"),
                }
            }
        }
        self.claim_exit(id, exec_id, pid);
        let mut e = ev::TaskExecStarted::new();
        e.container_id = id.into();
        e.exec_id = exec_id.into();
        e.pid = pid as u32;
        self.inner.events.exec_started(e);
        if let Some(exit) = self.set_starting(id, exec_id, false) {
            self.inner.events.task_exit(exit);
        }
        resp.pid = pid as u32;
        Ok(resp)
    }

    /// The CRIU images of a created container that Start restores.
    fn restore_of(&self, id: &str) -> Result<Option<std::path::PathBuf>> {
        let st = self.lock();
        let c = st.container(id)?;
        Ok(c.restore.clone().filter(|_| c.init.pid == 0))
    }

    /// Start of a container created from a checkpoint: its stdio is made now and
    /// `runtime restore` recreates its processes; from then on it is a running init.
    async fn start_restore(
        &self,
        id: &str,
        images: &std::path::Path,
    ) -> Result<api::StartResponse> {
        let (runtime, bundle, stdin, stdout, stderr) = {
            let st = self.lock();
            let c = st.container(id)?;
            if c.init.state != ProcState::Created || c.init.starting {
                return Err(ShimError::WrongState {
                    id: id.into(),
                    state: c.init.state.name(),
                    op: "start",
                });
            }
            (
                c.runtime.clone(),
                c.bundle.clone(),
                c.init.stdin.clone(),
                c.init.stdout.clone(),
                c.init.stderr.clone(),
            )
        };
        self.set_starting(id, "", true);
        let req = StdioRequest {
            stdin: &stdin,
            stdout: &stdout,
            stderr: &stderr,
            terminal: false,
            id,
            namespace: &self.inner.cfg.namespace,
        };
        let run = async {
            let prepared = stdio::prepare(&req, &self.inner.reaper, &self.inner.cfg.console_dir)?;
            let (io, pending) = prepared.split();
            let pid = runtime
                .restore(&self.inner.reaper, id, &bundle, images, io)
                .await?;
            Ok::<_, ShimError>((pid, pending.finish()))
        };
        let (pid, stdio) = match run.await {
            Ok(v) => v,
            Err(e) => {
                if let Some(exit) = self.set_starting(id, "", false) {
                    self.inner.events.task_exit(exit);
                }
                return Err(e);
            }
        };
        if let Ok(c) = self.lock().container_mut(id) {
            c.init.pid = pid;
            c.init.state = ProcState::Running;
            c.cgroup = crust_cgroups::Cgroup::of_pid(pid).ok();
            match stdio {
                Ok(s) => c.init.stdio = s,
                Err(e) => eprintln!("crust-shim: restored {id} stdio: {e}"),
            }
        }
        self.claim_exit(id, "", pid);
        self.watch_oom(id);
        let mut e = ev::TaskStart::new();
        e.container_id = id.into();
        e.pid = pid as u32;
        self.inner.events.task_start(e);
        if let Some(exit) = self.set_starting(id, "", false) {
            self.inner.events.task_exit(exit);
        }
        let mut resp = api::StartResponse::new();
        resp.pid = pid as u32;
        Ok(resp)
    }

    fn set_exec_pid(&self, id: &str, exec_id: &str, pid: i32) {
        let mut st = self.lock();
        if let Some(x) = st
            .containers
            .get_mut(id)
            .and_then(|c| c.execs.get_mut(exec_id))
        {
            x.proc.pid = pid;
        }
    }
}
