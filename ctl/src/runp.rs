//! `crustctl runp POD-CONFIG`: prints the new sandbox id.

use std::path::PathBuf;

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod sandbox config (JSON or YAML).
    config: PathBuf,
    /// Runtime handler.
    #[arg(long)]
    runtime: Option<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let cfg = super::config::pod(&a.config)?;
    let r = conn
        .runtime()
        .await?
        .run_pod_sandbox(k8s_cri::v1::RunPodSandboxRequest {
            config: Some(cfg),
            runtime_handler: a.runtime.unwrap_or_default(),
        })
        .await
        .map_err(super::rpc)?
        .into_inner();
    println!("{}", r.pod_sandbox_id);
    Ok(())
}
