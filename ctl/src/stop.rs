//! `crustctl stop [-T SECONDS] CONTAINER...`.

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait before SIGKILL.
    #[arg(long = "stop-timeout", short = 'T', default_value_t = 0)]
    stop_timeout: i64,
    /// Container ids.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    for id in a.containers {
        c.stop_container(k8s_cri::v1::StopContainerRequest {
            container_id: id.clone(),
            timeout: a.stop_timeout,
        })
        .await
        .map_err(super::rpc)?;
        println!("{id}");
    }
    Ok(())
}
