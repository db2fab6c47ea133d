//! Kill: signal a process (the init through the runtime, so `all` works; an exec directly).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{ProcState, Service};
use crate::error::{Result, ShimError};

impl Service {
    pub(super) async fn do_kill(
        &self,
        id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<()> {
        let sig = Signal::try_from(signal as i32)
            .map_err(|_| ShimError::InvalidRequest(format!("invalid signal {signal}")))?;
        let (runtime, pid) = {
            let st = self.lock();
            let c = st.container(id)?;
            let p = c.proc(id, exec_id)?;
            if p.state == ProcState::Stopped || p.exiting {
                let who = if exec_id.is_empty() { id } else { exec_id };
                return Err(ShimError::ProcessFinished(who.into()));
            }
            if p.pid <= 0 {
                return Err(ShimError::WrongState {
                    id: exec_id.into(),
                    state: "not started",
                    op: "kill",
                });
            }
            (c.runtime.clone(), p.pid)
        };
        if exec_id.is_empty() {
            let r = runtime.kill(&self.inner.reaper, id, signal, all).await;
            if let Err(e) = r {
                // The init may have exited meanwhile: report that, not a runtime error.
                let finished = self
                    .lock()
                    .container(id)
                    .map(|c| c.init.state == ProcState::Stopped || c.init.exiting)
                    .unwrap_or(true);
                return Err(if finished {
                    ShimError::ProcessFinished(id.into())
                } else {
                    e
                });
            }
            return Ok(());
        }
        kill(Pid::from_raw(pid), sig).map_err(|e| match e {
            nix::errno::Errno::ESRCH => ShimError::ProcessFinished(exec_id.into()),
            e => ShimError::io("kill", format!("pid {pid}"), e.into()),
        })
    }
}
