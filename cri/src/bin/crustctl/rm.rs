//! `crustctl rm CONTAINER...` (or `--all`).

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids.
    containers: Vec<String>,
    /// Remove every container.
    #[arg(long, short = 'a')]
    all: bool,
    /// Stop running containers first.
    #[arg(long, short = 'f')]
    force: bool,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    let mut ids = a.containers;
    if a.all {
        let l = c
            .list_containers(k8s_cri::v1::ListContainersRequest::default())
            .await
            .map_err(super::rpc)?
            .into_inner();
        ids.extend(l.containers.into_iter().map(|c| c.id));
    }
    anyhow::ensure!(!ids.is_empty(), "no container given");
    for id in ids {
        if a.force {
            c.stop_container(k8s_cri::v1::StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            })
            .await
            .map_err(super::rpc)?;
        }
        c.remove_container(k8s_cri::v1::RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .map_err(super::rpc)?;
        println!("{id}");
    }
    Ok(())
}
