//! `crustctl import FILE [--name NAME]`: imports an OCI layout/archive or `docker save`
//! tarball through crustd's `crust.v1.Images/Import` RPC (the archive is read by crustd
//! from this host's filesystem). With crustd stopped, `crustd import FILE` does the same
//! straight into its root; crustctl never opens crust's stores itself.

use std::path::PathBuf;

use anyhow::Context as _;
use crust_client::import::{call, ImportRequest};

use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive.
    file: PathBuf,
    /// Name for images the archive leaves unnamed (or repository for a bare tag).
    #[arg(long)]
    name: Option<String>,
    /// No longer here: importing into a root while crustd is stopped is `crustd import`.
    #[arg(long, hide = true)]
    root: Option<PathBuf>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    if let Some(root) = a.root {
        anyhow::bail!(
            "crustctl talks to a running crustd only; to import into {} while crustd is \
             stopped run `crustd import --root {} {}`",
            root.display(),
            root.display(),
            a.file.display()
        );
    }
    let path =
        std::path::absolute(&a.file).with_context(|| format!("resolve {}", a.file.display()))?;
    let req = ImportRequest {
        path: path.display().to_string(),
        name: a.name.unwrap_or_default(),
    };
    let resp = call(conn.channel().await?, req).await.map_err(rpc)?;
    for i in resp.images {
        println!("Imported {} {}", i.repo_tags.join(","), i.id);
    }
    Ok(())
}
