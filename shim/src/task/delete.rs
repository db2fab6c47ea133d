//! Delete: remove a stopped (or never started) process; for an init, `runtime delete`,
//! unmount the rootfs and forget the container. The shim leaves after its last one.

use std::time::SystemTime;

use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;

use super::{timestamp, ProcState, Service};
use crate::error::{Result, ShimError};

impl Service {
    pub(super) async fn do_delete(&self, id: &str, exec_id: &str) -> Result<api::DeleteResponse> {
        let mut resp = api::DeleteResponse::new();
        if !exec_id.is_empty() {
            let mut st = self.lock();
            let c = st.container_mut(id)?;
            let x = c
                .execs
                .get(exec_id)
                .ok_or_else(|| ShimError::ExecNotFound {
                    id: id.into(),
                    exec_id: exec_id.into(),
                })?;
            let deletable = x.proc.state == ProcState::Stopped
                || (x.proc.state == ProcState::Created && x.proc.pid == 0);
            if !deletable || x.proc.exiting {
                return Err(ShimError::WrongState {
                    id: exec_id.into(),
                    state: x.proc.state.name(),
                    op: "delete",
                });
            }
            let (status, at) = x.proc.exit.unwrap_or((0, SystemTime::now()));
            resp.pid = x.proc.pid.max(0) as u32;
            resp.exit_status = status;
            resp.exited_at = Some(timestamp(at)).into();
            c.execs.remove(exec_id);
            return Ok(resp);
        }

        let (runtime, state) = {
            let st = self.lock();
            let c = st.container(id)?;
            let ok =
                matches!(c.init.state, ProcState::Created | ProcState::Stopped) && !c.init.exiting;
            if !ok {
                return Err(ShimError::WrongState {
                    id: id.into(),
                    state: if c.init.exiting {
                        "exiting"
                    } else {
                        c.init.state.name()
                    },
                    op: "delete",
                });
            }
            (c.runtime.clone(), c.init.state)
        };
        // A created container is killed by a forced delete; a stopped one is just removed.
        runtime
            .delete(&self.inner.reaper, id, state == ProcState::Created)
            .await?;
        let c = self.lock().containers.remove(id);
        let Some(mut c) = c else {
            return Err(ShimError::ContainerNotFound(id.into()));
        };
        if let Some(w) = c.oom.take() {
            w.stop();
        }
        c.init.stdio.close_stdin();
        if c.rootfs_mounted {
            crate::mount::unmount_rootfs(&c.bundle.join("rootfs"));
        }
        let _ = std::fs::remove_file(c.bundle.join(super::create::RUNTIME_FILE));
        let _ = std::fs::remove_file(c.bundle.join("init.pid"));
        let (status, at) = c
            .init
            .exit
            .unwrap_or((128 + libc::SIGKILL as u32, SystemTime::now()));
        resp.pid = c.init.pid as u32;
        resp.exit_status = status;
        resp.exited_at = Some(timestamp(at)).into();

        let mut e = ev::TaskDelete::new();
        e.container_id = id.into();
        e.id = id.into();
        e.pid = resp.pid;
        e.exit_status = status;
        e.exited_at = Some(timestamp(at)).into();
        self.inner.events.task_delete(e);
        if !self.inner.cfg.keep_empty {
            self.exit_if_empty();
        }
        Ok(resp)
    }
}
