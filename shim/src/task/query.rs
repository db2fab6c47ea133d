//! Read-only requests: State, Pids, Wait, Stats, Connect.

use containerd_shim_protos::api;

use std::collections::HashMap;

use protobuf::well_known_types::any::Any;

use super::{timestamp, ProcState, Service};
use crate::error::{Result, ShimError};
use crust_cgroups::Cgroup;

impl Service {
    pub(super) fn do_state(&self, id: &str, exec_id: &str) -> Result<api::StateResponse> {
        let st = self.lock();
        let c = st.container(id)?;
        let p = c.proc(id, exec_id)?;
        let mut r = api::StateResponse::new();
        r.id = if exec_id.is_empty() {
            id.into()
        } else {
            exec_id.into()
        };
        r.exec_id = exec_id.into();
        r.bundle = c.bundle.display().to_string();
        r.pid = p.pid.max(0) as u32;
        r.status = p.state.proto().into();
        r.stdin = p.stdin.clone();
        r.stdout = p.stdout.clone();
        r.stderr = p.stderr.clone();
        r.terminal = p.terminal;
        if let Some((status, at)) = p.exit {
            r.exit_status = status;
            r.exited_at = Some(timestamp(at)).into();
        }
        Ok(r)
    }

    /// The container's processes; those that are execs carry their exec id in `info`
    /// (`containerd.runc.v1.ProcessDetails`, as containerd's runc shim does).
    pub(super) async fn do_pids(&self, id: &str) -> Result<api::PidsResponse> {
        let runtime = self.lock().container(id)?.runtime.clone();
        let pids = runtime.ps(&self.inner.reaper, id).await?;
        let execs: HashMap<u32, String> = {
            let st = self.lock();
            let c = st.container(id)?;
            c.execs
                .iter()
                .filter(|(_, x)| x.proc.pid > 0 && x.proc.state != ProcState::Stopped)
                .map(|(xid, x)| (x.proc.pid as u32, xid.clone()))
                .collect()
        };
        let mut r = api::PidsResponse::new();
        r.processes = pids
            .into_iter()
            .map(|pid| {
                let mut i = api::ProcessInfo::new();
                i.pid = pid;
                if let Some(xid) = execs.get(&pid) {
                    i.info = Some(process_details(xid)).into();
                }
                i
            })
            .collect();
        Ok(r)
    }

    pub(super) async fn do_wait(&self, id: &str, exec_id: &str) -> Result<api::WaitResponse> {
        let mut rx = {
            let st = self.lock();
            st.container(id)?.proc(id, exec_id)?.exited.subscribe()
        };
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| *v)
            .ok_or_else(|| ShimError::ContainerNotFound(id.into()))?;
        let mut r = api::WaitResponse::new();
        r.exit_status = exit.0;
        r.exited_at = Some(timestamp(exit.1)).into();
        Ok(r)
    }

    /// Cgroup metrics of the container; after the init exited (until Delete) they still
    /// answer while the cgroup exists, so a client can read the OOM-kill count.
    pub(super) fn do_stats(&self, id: &str) -> Result<api::StatsResponse> {
        let (cg, pid) = {
            let st = self.lock();
            let c = st.container(id)?;
            (c.cgroup.clone(), c.init.pid)
        };
        let cg = cg
            .or_else(|| Cgroup::of_pid(pid).ok())
            .filter(|cg| cg.memory_dir().is_some_and(|d| d.exists()))
            .ok_or_else(|| ShimError::ProcessFinished(id.into()))?;
        let mut r = api::StatsResponse::new();
        r.stats = Some(crate::cgroup::metrics(&cg)).into();
        Ok(r)
    }

    pub(super) fn do_connect(&self, id: &str) -> Result<api::ConnectResponse> {
        let mut r = api::ConnectResponse::new();
        r.shim_pid = std::process::id();
        r.version = crust_shim_contract::version_string(env!("CARGO_PKG_VERSION"));
        if !id.is_empty() {
            r.task_pid = self.lock().container(id)?.init.pid.max(0) as u32;
        }
        Ok(r)
    }
}

/// Type URL of containerd's `ProcessDetails` (runtime/v2/runc/options).
pub const PROCESS_DETAILS_TYPE: &str = "containerd.runc.v1.ProcessDetails";

/// `ProcessDetails { string exec_id = 1; }`, encoded by hand: the message is not in
/// containerd-shim-protos.
pub fn process_details(exec_id: &str) -> Any {
    let mut value = Vec::with_capacity(exec_id.len() + 6);
    value.push(0x0a); // field 1, length-delimited
    let mut n = exec_id.len();
    while n >= 0x80 {
        value.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    value.push(n as u8);
    value.extend_from_slice(exec_id.as_bytes());
    let mut a = Any::new();
    a.type_url = PROCESS_DETAILS_TYPE.into();
    a.value = value;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_process_details() {
        let a = process_details("ex1");
        assert_eq!(a.value, [0x0a, 3, b'e', b'x', b'1']);
        // Read back through protobuf's own decoder (unknown field 1 of an empty message).
        let long = "x".repeat(200);
        let m: protobuf::well_known_types::empty::Empty =
            protobuf::Message::parse_from_bytes(&process_details(&long).value).unwrap();
        let f: Vec<_> = m.special_fields.unknown_fields().iter().collect();
        assert!(matches!(
            f[..],
            [(1, protobuf::UnknownValueRef::LengthDelimited(b))] if b == long.as_bytes()
        ));
    }
}
