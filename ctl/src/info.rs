//! `crustctl info`: the runtime's Status as crictl prints it: `{"status": …, <info
//! keys>…}`, as JSON, YAML or through `-o go-template --template T`. `-q` asks for no
//! verbose info.

use super::output::{print_document, status_document, Format};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json, yaml or go-template.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Format,
    /// The template for `-o go-template` (Go text/template syntax; see README for the subset).
    #[arg(long)]
    template: Option<String>,
    /// Do not ask for verbose info.
    #[arg(long, short = 'q')]
    quiet: bool,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.output != Format::Table,
        "info has no table output (json, yaml or go-template)"
    );
    let st = conn
        .runtime()
        .await?
        .status(k8s_cri::v1::StatusRequest { verbose: !a.quiet })
        .await
        .map_err(super::rpc)?
        .into_inner();
    let doc = status_document(crate::proto::to_j(&st.status), &st.info);
    print_document(&doc, a.output, a.template.as_deref())
}
