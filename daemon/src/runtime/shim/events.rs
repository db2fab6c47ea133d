//! The shims' task events, taken on crustd's ttrpc socket `<state>/shim-events.sock`
//! (`containerd.services.events.ttrpc.v1.Events/Forward`, what a shim calls on its
//! `TTRPC_ADDRESS`, as containerd ≥ 1.5 receives them).
//!
//! crustd learns exits through the shim's `Wait`, so of the events only `TaskOOM` is used:
//! the shim reports an OOM kill of a container's process from the container's own
//! `memory.events`, which is the only per-container record of it and which a systemd scope
//! takes away with its last process. The shim publishes a container's `TaskOOM` before it
//! lets `Wait` return for the container's exit, and this handler records it before it
//! answers, so the exit is recorded (and the CRI Stopped event sent) with reason OOMKilled.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use containerd_shim_protos::events::task::TaskOOM;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{create_events, Events};
use protobuf::well_known_types::empty::Empty;
use protobuf::Message;
use ttrpc::asynchronous::TtrpcContext;

use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::Runtime;

/// The topic of an OOM kill.
const TOPIC_OOM: &str = "/tasks/oom";

/// The Events service: hands events to the runtime.
struct Sink(Weak<Runtime>);

#[async_trait]
impl Events for Sink {
    async fn forward(&self, _: &TtrpcContext, r: ForwardRequest) -> ttrpc::Result<Empty> {
        let Some(env) = r.envelope.into_option() else {
            return Ok(Empty::new());
        };
        if env.topic != TOPIC_OOM {
            return Ok(Empty::new());
        }
        let Some(rt) = self.0.upgrade() else {
            return Ok(Empty::new());
        };
        let payload = env.event.into_option().map(|a| a.value).unwrap_or_default();
        match TaskOOM::parse_from_bytes(&payload) {
            Ok(e) => rt.oom_reported(&e.container_id).await,
            Err(e) => tracing::warn!(error = %e, "undecodable TaskOOM from a shim"),
        }
        Ok(Empty::new())
    }
}

/// Serves the Events service on `path` (a stale socket file is replaced).
pub(crate) async fn serve(
    path: &std::path::Path,
    rt: Weak<Runtime>,
) -> Result<ttrpc::asynchronous::Server> {
    let io = |op: &'static str| {
        let path = path.to_path_buf();
        move |e: std::io::Error| RuntimeError::Io {
            op,
            path,
            source: e,
        }
    };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove")(e)),
        _ => {}
    }
    let mut server = ttrpc::asynchronous::Server::new()
        .bind(&format!("unix://{}", path.display()))
        .map_err(|e| io("bind")(std::io::Error::other(e.to_string())))?
        .register_service(create_events(Arc::new(Sink(rt))));
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io("chmod"))?;
    server
        .start()
        .await
        .map_err(|e| io("serve on")(std::io::Error::other(e.to_string())))?;
    Ok(server)
}
