//! `crustctl inspecti IMAGE...`: verbose ImageStatus as `{"status": …, "info": …}`.

use k8s_cri::v1::{ImageSpec, ImageStatusRequest};

use super::output::{print_verbose, Format};
use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
    /// Output format (json or yaml).
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Format,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.images().await?;
    for i in a.images {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: i.clone(),
                ..Default::default()
            }),
            verbose: true,
        };
        let st = c.image_status(req).await.map_err(rpc)?.into_inner();
        let Some(img) = st.image else {
            anyhow::bail!("no such image {i} present")
        };
        print_verbose(&img, &st.info, a.output)?;
    }
    Ok(())
}
