//! Pause/Resume, Update (resources, the CRI log reopen, attach), ResizePty, CloseIO.

use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;
use crust_shim_contract::{AttachError, AttachRequest, ATTACH_ANNOTATION, REOPEN_LOG_ANNOTATION};

use super::{ProcState, Service};
use crate::error::{Result, ShimError};

impl Service {
    pub(super) async fn do_pause(&self, id: &str, pause: bool) -> Result<()> {
        let runtime = {
            let st = self.lock();
            let c = st.container(id)?;
            let want = if pause {
                ProcState::Running
            } else {
                ProcState::Paused
            };
            if c.init.state != want || c.init.exiting {
                return Err(ShimError::WrongState {
                    id: id.into(),
                    state: c.init.state.name(),
                    op: if pause { "pause" } else { "resume" },
                });
            }
            c.runtime.clone()
        };
        if pause {
            runtime.pause(&self.inner.reaper, id).await?;
        } else {
            runtime.resume(&self.inner.reaper, id).await?;
        }
        if let Ok(c) = self.lock().container_mut(id) {
            if c.init.state != ProcState::Stopped {
                c.init.state = if pause {
                    ProcState::Paused
                } else {
                    ProcState::Running
                };
            }
        }
        if pause {
            let mut e = ev::TaskPaused::new();
            e.container_id = id.into();
            self.inner.events.paused(e);
        } else {
            let mut e = ev::TaskResumed::new();
            e.container_id = id.into();
            self.inner.events.resumed(e);
        }
        Ok(())
    }

    /// Subscribes the FIFOs named in an attach annotation ([`AttachRequest`]) to the
    /// init's output (see [`crate::tee`]). Checks everything before opening anything; on
    /// failure every FIFO opened is closed.
    fn attach(&self, id: &str, value: &str) -> Result<()> {
        let want = AttachRequest::decode(value).map_err(|e| match e {
            AttachError::Decode(message) => ShimError::Decode {
                what: "attach annotation",
                message,
            },
            AttachError::Empty => ShimError::InvalidRequest(e.to_string()),
        })?;
        let tees = {
            let st = self.lock();
            let p = &st.container(id)?.init;
            if p.state == ProcState::Stopped || p.exiting {
                return Err(ShimError::WrongState {
                    id: id.into(),
                    state: ProcState::Stopped.name(),
                    op: "attach",
                });
            }
            p.stdio.tees.clone()
        };
        let mut picked = Vec::new();
        for (i, path) in want.streams() {
            let tee =
                tees[i]
                    .clone()
                    .filter(|t| !t.ended())
                    .ok_or_else(|| ShimError::WrongState {
                        id: id.into(),
                        state: if tees[i].is_some() {
                            "past the end of its output"
                        } else {
                            "not copying this stream (no CRI log)"
                        },
                        op: if i == 0 {
                            "attach stdout"
                        } else {
                            "attach stderr"
                        },
                    })?;
            picked.push((tee, std::path::PathBuf::from(path)));
        }
        let mut opened = Vec::new();
        for (tee, path) in picked {
            opened.push((tee, crate::tee::open_fifo(&path)?, path));
        }
        for (tee, fd, path) in opened {
            tee.subscribe(fd, &path.display().to_string())?;
        }
        Ok(())
    }

    pub(super) async fn do_update(&self, r: api::UpdateTaskRequest) -> Result<()> {
        if let Some(v) = r.annotations.get(ATTACH_ANNOTATION) {
            self.attach(&r.id, v)?;
            if r.resources.is_none() {
                return Ok(());
            }
        }
        let reopen = r.annotations.contains_key(REOPEN_LOG_ANNOTATION);
        let runtime = {
            let st = self.lock();
            let c = st.container(&r.id)?;
            if reopen {
                c.init.stdio.reopen_log()?;
            }
            if c.init.state == ProcState::Stopped {
                if reopen && r.resources.is_none() {
                    return Ok(());
                }
                return Err(ShimError::ProcessFinished(r.id.clone()));
            }
            c.runtime.clone()
        };
        let Some(res) = r.resources.as_ref() else {
            if reopen {
                return Ok(());
            }
            return Err(ShimError::InvalidRequest("update without resources".into()));
        };
        serde_json::from_slice::<serde_json::Value>(&res.value).map_err(|e| ShimError::Decode {
            what: "resources",
            message: e.to_string(),
        })?;
        runtime.update(&self.inner.reaper, &r.id, &res.value).await
    }

    pub(super) fn do_resize(&self, id: &str, exec_id: &str, w: u32, h: u32) -> Result<()> {
        let st = self.lock();
        let p = st.container(id)?.proc(id, exec_id)?;
        if p.state == ProcState::Stopped {
            return Err(ShimError::ProcessFinished(id.into()));
        }
        p.stdio.resize(w, h)
    }

    pub(super) fn do_close_io(&self, id: &str, exec_id: &str, stdin: bool) -> Result<()> {
        let mut st = self.lock();
        let p = st.container_mut(id)?.proc_mut(id, exec_id)?;
        if stdin {
            p.stdio.close_stdin();
        }
        Ok(())
    }
}
