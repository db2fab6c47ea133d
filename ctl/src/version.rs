//! `crustctl version`.

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(conn: &Conn, _a: Args) -> anyhow::Result<()> {
    let v = conn
        .runtime()
        .await?
        .version(k8s_cri::v1::VersionRequest::default())
        .await
        .map_err(super::rpc)?
        .into_inner();
    println!("Version:  {}", v.version);
    println!("RuntimeName:  {}", v.runtime_name);
    println!("RuntimeVersion:  {}", v.runtime_version);
    println!("RuntimeApiVersion:  {}", v.runtime_api_version);
    Ok(())
}
