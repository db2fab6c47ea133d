//! `crustctl rmi IMAGE...` (or `--all`): as crictl, fails for an image that does not exist.

use k8s_cri::v1::{ImageSpec, ImageStatusRequest, ListImagesRequest, RemoveImageRequest};

use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (names, ids or id prefixes).
    images: Vec<String>,
    /// Remove all images.
    #[arg(long, short = 'a')]
    all: bool,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut c = conn.images().await?;
    let mut targets = a.images;
    if a.all {
        let l = c
            .list_images(ListImagesRequest::default())
            .await
            .map_err(rpc)?
            .into_inner();
        targets.extend(l.images.into_iter().map(|i| i.id));
    }
    if targets.is_empty() {
        anyhow::bail!("no image given");
    }
    let mut failed = false;
    for t in targets {
        let spec = || {
            Some(ImageSpec {
                image: t.clone(),
                ..Default::default()
            })
        };
        let st = c
            .image_status(ImageStatusRequest {
                image: spec(),
                verbose: false,
            })
            .await
            .map_err(rpc)?
            .into_inner();
        let Some(img) = st.image else {
            eprintln!("no such image {t}");
            failed = true;
            continue;
        };
        c.remove_image(RemoveImageRequest { image: spec() })
            .await
            .map_err(rpc)?;
        if t.starts_with("sha256:") || img.id.contains(&t) {
            for n in img.repo_tags.iter().chain(&img.repo_digests) {
                println!("Deleted: {n}");
            }
        } else {
            println!("Deleted: {t}");
        }
    }
    if failed {
        anyhow::bail!("unable to remove the image(s)");
    }
    Ok(())
}
