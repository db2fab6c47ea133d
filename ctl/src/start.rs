//! `crustctl start CONTAINER...`.

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    for id in a.containers {
        c.start_container(k8s_cri::v1::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .map_err(super::rpc)?;
        println!("{id}");
    }
    Ok(())
}
