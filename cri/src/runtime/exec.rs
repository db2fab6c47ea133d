//! ExecSync; Exec, Attach and PortForward need the streaming server (issue 8).

use std::time::Duration;

use crust_daemon::runtime::Runtime;
use k8s_cri::v1 as cri;
use tonic::Status;

use crate::status::from_error;

pub async fn exec_sync(
    rt: &Runtime,
    r: cri::ExecSyncRequest,
) -> Result<cri::ExecSyncResponse, Status> {
    let timeout = Duration::from_secs(r.timeout.max(0) as u64);
    let out = rt
        .exec_sync(&r.container_id, r.cmd, timeout)
        .await
        .map_err(from_error)?;
    Ok(cri::ExecSyncResponse {
        stdout: out.stdout,
        stderr: out.stderr,
        exit_code: out.exit_code,
    })
}

/// The answer of the streaming RPCs until the streaming server is wired.
pub fn streaming(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} needs crust's streaming server, which this crustd does not serve yet"
    ))
}
