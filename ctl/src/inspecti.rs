//! `crustctl inspecti IMAGE...`: ImageStatus as crictl prints it: `{"status": <Image>,
//! "info": …}`, `-o go-template --template T`, or `-o table`. `-q` asks for no verbose
//! info.

use k8s_cri::v1::{ImageSpec, ImageStatusRequest};

use super::output::{human_size, print_document, status_document, Format};
use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (name, id or id prefix).
    #[arg(required = true)]
    images: Vec<String>,
    /// Output format: json, yaml, go-template or table.
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
    let mut c = conn.images().await?;
    for i in a.images {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: i.clone(),
                ..Default::default()
            }),
            verbose: !a.quiet,
        };
        let st = c
            .image_status(req)
            .await
            .map_err(|e| anyhow::anyhow!("image status for {i:?} request: {}", rpc(e)))?
            .into_inner();
        let Some(img) = st.image else {
            anyhow::bail!("no such image {i:?} present")
        };
        if a.output == Format::Table {
            println!("ID: {}", img.id);
            for t in &img.repo_tags {
                println!("Tag: {t}");
            }
            for d in &img.repo_digests {
                println!("Digest: {d}");
            }
            println!("Size: {}", human_size(img.size));
            if !a.quiet {
                let mut keys: Vec<&String> = st.info.keys().collect();
                keys.sort();
                let items: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k}:{}", st.info[*k]))
                    .collect();
                println!("Info: map[{}]", items.join(" "));
            }
            continue;
        }
        let doc = status_document(crate::proto::to_j(&img), &st.info);
        print_document(&doc, a.output, a.template.as_deref())?;
    }
    Ok(())
}
