//! `crustctl rmp POD...` (or `--all`); `--force` stops first (RemovePodSandbox stops
//! anyway, as containerd).

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod ids.
    pods: Vec<String>,
    /// Remove every pod.
    #[arg(long, short = 'a')]
    all: bool,
    /// Stop running pods first.
    #[arg(long, short = 'f')]
    force: bool,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    let mut ids = a.pods;
    if a.all {
        let l = c
            .list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest::default())
            .await
            .map_err(super::rpc)?
            .into_inner();
        ids.extend(l.items.into_iter().map(|p| p.id));
    }
    anyhow::ensure!(!ids.is_empty(), "no pod given");
    for id in ids {
        if a.force {
            c.stop_pod_sandbox(k8s_cri::v1::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .map_err(super::rpc)?;
        }
        c.remove_pod_sandbox(k8s_cri::v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .map_err(super::rpc)?;
        println!("Removed sandbox {id}");
    }
    Ok(())
}
