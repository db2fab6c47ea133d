//! `crustctl inspect CONTAINER...`: ContainerStatus as crictl prints it: `{"status": …,
//! "info": …}` with the status's times as RFC 3339 (local zone) and its nested objects'
//! keys sorted (crictl re-marshals the status), `-o go-template --template T`, or `-o
//! table`. `-q` asks for no verbose info.

use k8s_cri::v1 as cri;

use super::output::json::J;
use super::output::{age, rfc3339_nano_local, StatusArgs};
use super::ps::key_values;
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids (or prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
    #[command(flatten)]
    out: StatusArgs,
}

/// The status as crictl's `marshalContainerStatus` leaves it.
pub fn status_j(s: &cri::ContainerStatus) -> J {
    let mut j = crate::proto::to_j(s).sorted_below_top();
    let state = cri::ContainerState::try_from(s.state).ok();
    let started = state != Some(cri::ContainerState::ContainerCreated);
    let finished = state == Some(cri::ContainerState::ContainerExited)
        || (state == Some(cri::ContainerState::ContainerUnknown) && s.finished_at > 0);
    // Go's zero time.Time, as crictl prints a time it does not set.
    let zero = || "0001-01-01T00:00:00Z".to_string();
    j.set("createdAt", J::Str(rfc3339_nano_local(s.created_at)));
    j.set(
        "startedAt",
        J::Str(if started {
            rfc3339_nano_local(s.started_at)
        } else {
            zero()
        }),
    );
    j.set(
        "finishedAt",
        J::Str(if finished {
            rfc3339_nano_local(s.finished_at)
        } else {
            zero()
        }),
    );
    j
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    for id in a.containers {
        let r = c
            .container_status(cri::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: a.out.verbose(),
            })
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "getting the status of the container {id:?}: {}",
                    super::rpc(e)
                )
            })?
            .into_inner();
        let Some(st) = r.status else {
            anyhow::bail!("no status for container {id:?}");
        };
        a.out.print(|| table(&st), || status_j(&st), &r.info)?;
    }
    Ok(())
}

fn table(s: &cri::ContainerStatus) -> String {
    let mut out = format!("ID: {}\n", s.id);
    if let Some(md) = &s.metadata {
        if !md.name.is_empty() {
            out.push_str(&format!("Name: {}\n", md.name));
        }
        if md.attempt != 0 {
            out.push_str(&format!("Attempt: {}\n", md.attempt));
        }
    }
    let state = cri::ContainerState::try_from(s.state)
        .map(|st| st.as_str_name())
        .unwrap_or("CONTAINER_UNKNOWN");
    out.push_str(&format!("State: {state}\n"));
    out.push_str(&format!("Created: {}\n", age(s.created_at)));
    if s.state != cri::ContainerState::ContainerCreated as i32 {
        out.push_str(&format!("Started: {}\n", age(s.started_at)));
    }
    if s.state == cri::ContainerState::ContainerExited as i32 {
        if s.finished_at > 0 {
            out.push_str(&format!("Finished: {}\n", age(s.finished_at)));
        }
        out.push_str(&format!("Exit Code: {}\n", s.exit_code));
    }
    out.push_str(&key_values("Labels", &s.labels));
    out.push_str(&key_values("Annotations", &s.annotations));
    out
}
