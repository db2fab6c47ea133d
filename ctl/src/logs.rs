//! `crustctl logs [--tail N] [--timestamps] CONTAINER`: reads the CRI log file the
//! container's status names (`<time> <stream> <P|F> <text>`), joining partial lines.

use std::io::Write;

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    container: String,
    /// Only the last N lines.
    #[arg(long)]
    tail: Option<usize>,
    /// Show timestamps.
    #[arg(long)]
    timestamps: bool,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let st = conn
        .runtime()
        .await?
        .container_status(k8s_cri::v1::ContainerStatusRequest {
            container_id: a.container.clone(),
            verbose: false,
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .status
        .ok_or_else(|| anyhow::anyhow!("no status for {}", a.container))?;
    anyhow::ensure!(
        !st.log_path.is_empty(),
        "container {} has no log path",
        a.container
    );
    let text = std::fs::read_to_string(&st.log_path)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", st.log_path))?;
    let mut lines: Vec<(bool, String)> = Vec::new();
    let mut partial = String::new();
    for l in text.lines() {
        let mut f = l.splitn(4, ' ');
        let (Some(ts), Some(stream), Some(tag)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let msg = f.next().unwrap_or("");
        partial.push_str(msg);
        if tag == "F" {
            let out = if a.timestamps {
                format!("{ts} {partial}")
            } else {
                partial.clone()
            };
            lines.push((stream == "stderr", out));
            partial.clear();
        }
    }
    let skip = a.tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    let (mut o, mut e) = (std::io::stdout().lock(), std::io::stderr().lock());
    for (err, l) in lines.into_iter().skip(skip) {
        if err {
            writeln!(e, "{l}")?;
        } else {
            writeln!(o, "{l}")?;
        }
    }
    Ok(())
}
