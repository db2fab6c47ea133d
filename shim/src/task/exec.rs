//! Exec: record a new process of a running container (started by Start with its id).

use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;

use super::{Exec, Proc, ProcState, Service};
use crate::error::{Result, ShimError};

impl Service {
    pub(super) fn do_exec(&self, r: api::ExecProcessRequest) -> Result<()> {
        if r.exec_id.is_empty() {
            return Err(ShimError::InvalidRequest("exec id is empty".into()));
        }
        let spec =
            r.spec.as_ref().map(|a| a.value.clone()).ok_or_else(|| {
                ShimError::InvalidRequest(format!("exec {} has no spec", r.exec_id))
            })?;
        let v: serde_json::Value =
            serde_json::from_slice(&spec).map_err(|e| ShimError::Decode {
                what: "exec process spec",
                message: e.to_string(),
            })?;
        if v.get("args")
            .and_then(|a| a.as_array())
            .is_none_or(|a| a.is_empty())
        {
            return Err(ShimError::InvalidRequest(format!(
                "exec {} has no args",
                r.exec_id
            )));
        }
        for uri in [&r.stdin, &r.stdout, &r.stderr] {
            crate::stdio::parse(uri)?;
        }
        let mut st = self.lock();
        let c = st.container_mut(&r.id)?;
        if c.execs.contains_key(&r.exec_id) {
            return Err(ShimError::ExecExists {
                id: r.id.clone(),
                exec_id: r.exec_id.clone(),
            });
        }
        if matches!(c.init.state, ProcState::Stopped) || c.init.exiting {
            return Err(ShimError::WrongState {
                id: r.id.clone(),
                state: "stopped",
                op: "exec in",
            });
        }
        let proc = Proc::new(&r.stdin, &r.stdout, &r.stderr, r.terminal);
        c.execs.insert(r.exec_id.clone(), Exec { proc, spec });
        drop(st);
        let mut e = ev::TaskExecAdded::new();
        e.container_id = r.id.clone();
        e.exec_id = r.exec_id.clone();
        self.inner.events.exec_added(e);
        Ok(())
    }
}
