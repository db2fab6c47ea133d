//! `crustctl imagefsinfo`: each image filesystem as crictl prints it (`{"status": …}`), or
//! `-o table`.

use k8s_cri::v1::ImageFsInfoRequest;

use super::output::{print_document, status_document, Format};
use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json, yaml, go-template or table.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Format,
    /// The template for `-o go-template` (Go text/template syntax; see README for the subset).
    #[arg(long)]
    template: Option<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let r = conn
        .images()
        .await?
        .image_fs_info(ImageFsInfoRequest {})
        .await
        .map_err(rpc)?
        .into_inner();
    for fs in r.image_filesystems {
        if a.output == Format::Table {
            println!("TimeStamp: {}", fs.timestamp);
            println!("UsedBytes: {}", fs.used_bytes.map(|u| u.value).unwrap_or(0));
            println!(
                "Mountpoint: {}",
                fs.fs_id.map(|f| f.mountpoint).unwrap_or_default()
            );
            continue;
        }
        let doc = status_document(crate::proto::to_j(&fs), &Default::default());
        print_document(&doc, a.output, a.template.as_deref())?;
    }
    Ok(())
}
