//! ExecSync, and the streaming RPCs Exec, Attach and PortForward: they check the container
//! or pod against the runtime (NotFound, FailedPrecondition as containerd answers), then
//! the request itself (InvalidArgument), and return a single-use URL on crustd's streaming
//! server ([`crate::streaming`]).

use std::time::Duration;

use crust_daemon::runtime::{ContainerState, PodState, Runtime, RuntimeError};
use crust_streaming::RequestError;
use k8s_cri::v1 as cri;
use tonic::Status;

use crate::status::from_error;
use crate::streaming::StreamingServer;

pub async fn exec_sync(
    rt: &Runtime,
    r: cri::ExecSyncRequest,
) -> Result<cri::ExecSyncResponse, Status> {
    // 0 is "no timeout"; a negative one is no duration at all.
    if r.timeout < 0 {
        return Err(Status::invalid_argument(format!(
            "timeout {} is negative",
            r.timeout
        )));
    }
    let timeout = Duration::from_secs(r.timeout as u64);
    let mut out = rt
        .exec_sync(&r.container_id, r.cmd, timeout)
        .await
        .map_err(from_error)?;
    // Truncated, not refused, when both streams together would not fit one answer (the
    // 64 bytes are the message's own: field tags, lengths, the exit code).
    out.truncate_to(crate::server::MAX_MSG - 64);
    Ok(cri::ExecSyncResponse {
        stdout: out.stdout,
        stderr: out.stderr,
        exit_code: out.exit_code,
    })
}

fn server(s: Option<&StreamingServer>) -> Result<&StreamingServer, Status> {
    s.ok_or_else(|| Status::unavailable("crustd's streaming server is not running"))
}

fn request_error(e: RequestError) -> Status {
    match e {
        RequestError::Token(
            crust_streaming::token::TokenError::TooManyInFlight { .. }
            | crust_streaming::token::TokenError::TooManyForTarget { .. },
        ) => Status::resource_exhausted(e.to_string()),
        RequestError::Token(_) => Status::internal(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

/// The full id of running container `id` (NotFound, or FailedPrecondition when not running:
/// the runtime's `WrongState`, mapped like every other core error).
fn running_container(rt: &Runtime, id: &str, op: &'static str) -> Result<String, Status> {
    if id.is_empty() {
        return Err(crate::status::missing("container_id"));
    }
    let c = rt.container(id).map_err(from_error)?;
    if c.state != ContainerState::Running {
        return Err(from_error(RuntimeError::WrongState {
            what: "container",
            state: format!("{:?}", c.state).to_lowercase(),
            id: c.id,
            op,
        }));
    }
    Ok(c.id)
}

pub fn exec(
    rt: &Runtime,
    s: Option<&StreamingServer>,
    r: cri::ExecRequest,
) -> Result<cri::ExecResponse, Status> {
    let id = running_container(rt, &r.container_id, "exec")?;
    let url = server(s)?
        .get_exec(crust_streaming::ExecRequest {
            container_id: id,
            cmd: r.cmd,
            tty: r.tty,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
        })
        .map_err(request_error)?;
    Ok(cri::ExecResponse { url })
}

pub fn attach(
    rt: &Runtime,
    s: Option<&StreamingServer>,
    r: cri::AttachRequest,
) -> Result<cri::AttachResponse, Status> {
    let id = running_container(rt, &r.container_id, "attach")?;
    let url = server(s)?
        .get_attach(crust_streaming::AttachRequest {
            container_id: id,
            tty: r.tty,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
        })
        .map_err(request_error)?;
    Ok(cri::AttachResponse { url })
}

pub fn port_forward(
    rt: &Runtime,
    s: Option<&StreamingServer>,
    r: cri::PortForwardRequest,
) -> Result<cri::PortForwardResponse, Status> {
    if r.pod_sandbox_id.is_empty() {
        return Err(crate::status::missing("pod_sandbox_id"));
    }
    let p = rt.pod(&r.pod_sandbox_id).map_err(from_error)?;
    if p.state != PodState::Ready {
        return Err(from_error(RuntimeError::PodNotReady(p.id)));
    }
    let url = server(s)?
        .get_port_forward(&p.id, &r.port)
        .map_err(request_error)?;
    Ok(cri::PortForwardResponse { url })
}
