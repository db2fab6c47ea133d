//! `crustctl inspectp POD...`: PodSandboxStatus as crictl prints it: `{"status": …,
//! "info": …}` with `createdAt` as RFC 3339 (local zone) and the nested objects' keys
//! sorted, `-o go-template --template T`, or `-o table`. `-q` asks for no verbose info.

use k8s_cri::v1 as cri;

use super::output::json::J;
use super::output::{go_time, rfc3339_nano_local, StatusArgs};
use super::ps::key_values;
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod ids (or prefixes).
    #[arg(required = true)]
    pods: Vec<String>,
    #[command(flatten)]
    out: StatusArgs,
}

/// The status as crictl's `marshalPodSandboxStatus` leaves it.
pub fn status_j(s: &cri::PodSandboxStatus) -> J {
    let mut j = crate::proto::to_j(s).sorted_below_top();
    j.set("createdAt", J::Str(rfc3339_nano_local(s.created_at)));
    j
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    for id in a.pods {
        let r = c
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: a.out.verbose(),
            })
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "getting the pod sandbox status for {id:?}: {}",
                    super::rpc(e)
                )
            })?
            .into_inner();
        let Some(st) = r.status else {
            anyhow::bail!("no status for pod {id:?}");
        };
        a.out.print(|| table(&st), || status_j(&st), &r.info)?;
    }
    Ok(())
}

fn table(s: &cri::PodSandboxStatus) -> String {
    let mut out = format!("ID: {}\n", s.id);
    if let Some(md) = &s.metadata {
        out.push_str(&super::output::pod_names(md));
        out.push_str(&format!("Attempt: {}\n", md.attempt));
    }
    let state = cri::PodSandboxState::try_from(s.state)
        .map(|st| st.as_str_name())
        .unwrap_or("SANDBOX_NOTREADY");
    out.push_str(&format!("Status: {state}\n"));
    out.push_str(&format!("Created: {}\n", go_time(s.created_at)));
    if let Some(n) = &s.network {
        out.push_str(&format!("IP Addresses: {}\n", n.ip));
        for ip in &n.additional_ips {
            out.push_str(&format!("Additional IP: {}\n", ip.ip));
        }
    }
    out.push_str(&key_values("Labels", &s.labels));
    out.push_str(&key_values("Annotations", &s.annotations));
    out
}
