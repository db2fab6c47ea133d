//! `crustctl inspect CONTAINER...`: verbose ContainerStatus.

use super::output::{print_verbose, Format};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids.
    #[arg(required = true)]
    containers: Vec<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Format,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    for id in a.containers {
        let st = c
            .container_status(k8s_cri::v1::ContainerStatusRequest {
                container_id: id,
                verbose: true,
            })
            .await
            .map_err(super::rpc)?
            .into_inner();
        print_verbose(&st.status, &st.info, a.output)?;
    }
    Ok(())
}
