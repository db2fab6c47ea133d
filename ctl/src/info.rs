//! `crustctl info`: verbose Status as JSON.

use super::output::{print, Format};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format (json or yaml).
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Format,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let st = conn
        .runtime()
        .await?
        .status(k8s_cri::v1::StatusRequest { verbose: true })
        .await
        .map_err(super::rpc)?
        .into_inner();
    let mut out = serde_json::json!({ "status": st.status });
    for (k, v) in st.info {
        out[k] = serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
    }
    print(&out, a.output)
}
