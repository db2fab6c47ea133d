//! `crustctl import FILE [--name NAME] [--root DIR]`: imports an OCI layout/archive or
//! `docker save` tarball. Through crustd's `crust.v1.Images/Import` RPC (the archive is
//! read by crustd from this host's filesystem), or with `--root` straight into a crust
//! root directory while crustd is not running (its metadata file is locked otherwise).

use std::path::PathBuf;

use anyhow::Context as _;
use crust_cri::import::{ImportRequest, ImportResponse};

use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive.
    file: PathBuf,
    /// Name for images the archive leaves unnamed (or repository for a bare tag).
    #[arg(long)]
    name: Option<String>,
    /// Import directly into this crust root instead of through crustd.
    #[arg(long)]
    root: Option<PathBuf>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let path =
        std::path::absolute(&a.file).with_context(|| format!("resolve {}", a.file.display()))?;
    let req = ImportRequest {
        path: path.display().to_string(),
        name: a.name.unwrap_or_default(),
    };
    let resp: ImportResponse = match a.root {
        Some(root) => {
            let images = crust_daemon::images::Images::open(&root, Default::default())
                .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
            crust_cri::import::import(&images, req).await.map_err(rpc)?
        }
        None => crust_cri::import::call(conn.channel().await?, req)
            .await
            .map_err(rpc)?,
    };
    for i in resp.images {
        println!("Imported {} {}", i.repo_tags.join(","), i.id);
    }
    Ok(())
}
