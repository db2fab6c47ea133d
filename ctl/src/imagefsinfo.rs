//! `crustctl imagefsinfo`.

use k8s_cri::v1::ImageFsInfoRequest;

use super::output::{print, Format};
use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format (json or yaml).
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Format,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let r = conn
        .images()
        .await?
        .image_fs_info(ImageFsInfoRequest {})
        .await
        .map_err(rpc)?
        .into_inner();
    print(&r, a.output)
}
