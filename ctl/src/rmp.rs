//! `crustctl rmp POD...` (or `--all`); `--force` stops first (RemovePodSandbox stops
//! anyway, as containerd). The loop is `rm`'s.

use super::rm::{remove, Kind};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod ids.
    pods: Vec<String>,
    /// Remove every pod.
    #[arg(long, short = 'a')]
    all: bool,
    /// Stop running pods first.
    #[arg(long, short = 'f')]
    force: bool,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    remove(conn, Kind::Pod, a.pods, a.all, a.force).await
}
