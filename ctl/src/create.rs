//! `crustctl create POD-ID CONTAINER-CONFIG POD-CONFIG`: prints the container id.

use std::path::PathBuf;

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod sandbox id.
    pod: String,
    /// Container config (JSON or YAML).
    container_config: PathBuf,
    /// The pod's config (JSON or YAML).
    pod_config: PathBuf,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let cc = super::config::container(&a.container_config)?;
    let pc = super::config::pod(&a.pod_config)?;
    let r = conn
        .runtime()
        .await?
        .create_container(k8s_cri::v1::CreateContainerRequest {
            pod_sandbox_id: a.pod,
            config: Some(cc),
            sandbox_config: Some(pc),
        })
        .await
        .map_err(super::rpc)?
        .into_inner();
    println!("{}", r.container_id);
    Ok(())
}
