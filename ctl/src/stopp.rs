//! `crustctl stopp POD...`.

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod ids.
    #[arg(required = true)]
    pods: Vec<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    for id in a.pods {
        c.stop_pod_sandbox(k8s_cri::v1::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .map_err(super::rpc)?;
        println!("Stopped sandbox {id}");
    }
    Ok(())
}
