//! The process of an exec: the OCI process JSON derived from the container's own (shared
//! by streamed exec and ExecSync), and the running container with its shim that both
//! start from.

use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::shim::Shim;
use crate::runtime::types::{ContainerRecord, ContainerState};
use crate::runtime::Runtime;

impl Runtime {
    /// Container `id` if it is running, with its pod's shim; `op` names what a container in
    /// another state refuses (FailedPrecondition), a pod without a shim is PodNotReady.
    pub(in crate::runtime) async fn running_with_shim(
        &self,
        id: &str,
        op: &'static str,
    ) -> Result<(ContainerRecord, Shim)> {
        let rec = self.container(id)?;
        if rec.state != ContainerState::Running {
            return Err(RuntimeError::WrongState {
                what: "container",
                id: rec.id,
                state: format!("{:?}", rec.state).to_lowercase(),
                op,
            });
        }
        let shim = self
            .shim(&rec.pod_id)
            .await?
            .ok_or_else(|| RuntimeError::PodNotReady(rec.pod_id.clone()))?;
        Ok((rec, shim))
    }
}

/// The OCI process JSON of an exec of `cmd` in `rec`: the container's own process (user,
/// env, cwd, capabilities…) with `args` and `terminal` replaced, and `TERM` set for a
/// terminal as containerd does.
pub(in crate::runtime) fn exec_process(
    rec: &ContainerRecord,
    cmd: Vec<String>,
    tty: bool,
) -> Result<Vec<u8>> {
    let cfg = rec.bundle.join("config.json");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).map_err(io("read", &cfg))?)
            .map_err(|e| RuntimeError::Invalid(format!("bundle spec {}: {e}", cfg.display())))?;
    let mut process = spec.get("process").cloned().unwrap_or_default();
    process["args"] = serde_json::json!(cmd);
    process["terminal"] = serde_json::json!(tty);
    if tty {
        add_term(&mut process);
    }
    serde_json::to_vec(&process).map_err(|e| RuntimeError::Invalid(format!("exec spec: {e}")))
}

/// Adds `TERM=xterm` to a process's env unless it sets TERM (as containerd does for tty).
pub(in crate::runtime) fn add_term(process: &mut serde_json::Value) {
    let env = process
        .get("env")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    if env
        .iter()
        .any(|e| e.as_str().is_some_and(|s| s.starts_with("TERM=")))
    {
        return;
    }
    let mut env = env;
    env.push(serde_json::json!("TERM=xterm"));
    process["env"] = serde_json::Value::Array(env);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_added_once() {
        let mut p = serde_json::json!({"env": ["PATH=/bin"]});
        add_term(&mut p);
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "TERM=xterm"]));
        let mut p = serde_json::json!({"env": ["TERM=vt100"]});
        add_term(&mut p);
        assert_eq!(p["env"], serde_json::json!(["TERM=vt100"]));
    }
}
