//! `crustctl inspecti IMAGE...`: ImageStatus as crictl prints it: `{"status": <Image>,
//! "info": …}`, `-o go-template --template T`, or `-o table`. `-q` asks for no verbose
//! info.

use k8s_cri::v1::{ImageSpec, ImageStatusRequest};

use super::output::{human_size, StatusArgs};
use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (name, id or id prefix).
    #[arg(required = true)]
    images: Vec<String>,
    #[command(flatten)]
    out: StatusArgs,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.images().await?;
    for i in a.images {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: i.clone(),
                ..Default::default()
            }),
            verbose: a.out.verbose(),
        };
        let st = c
            .image_status(req)
            .await
            .map_err(|e| anyhow::anyhow!("image status for {i:?} request: {}", rpc(e)))?
            .into_inner();
        let Some(img) = st.image else {
            anyhow::bail!("no such image {i:?} present")
        };
        let table = || {
            let mut out = format!("ID: {}\n", img.id);
            for t in &img.repo_tags {
                out.push_str(&format!("Tag: {t}\n"));
            }
            for d in &img.repo_digests {
                out.push_str(&format!("Digest: {d}\n"));
            }
            out.push_str(&format!("Size: {}\n", human_size(img.size)));
            out
        };
        a.out.print(table, || crate::proto::to_j(&img), &st.info)?;
    }
    Ok(())
}
