//! `crustctl port-forward POD [LOCAL:]REMOTE...`: listens on 127.0.0.1:LOCAL (0 or omitted:
//! a free port; printed) for each mapping and forwards every accepted connection to REMOTE
//! inside the pod, over one SPDY session from the PortForward RPC's URL, until Ctrl-C.

use std::sync::Arc;

use anyhow::Context as _;
use crust_streaming::client::PortForwarder;

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod sandbox id.
    pod: String,
    /// Port mappings: `LOCAL:REMOTE` or `REMOTE` (same local port), `0:REMOTE` for any.
    #[arg(required = true)]
    ports: Vec<String>,
}

fn parse(m: &str) -> anyhow::Result<(u16, u16)> {
    let bad = || anyhow::anyhow!("invalid port mapping {m:?}: want [LOCAL:]REMOTE");
    let (l, r) = match m.split_once(':') {
        Some((l, r)) => (l.parse::<u16>().map_err(|_| bad())?, r),
        None => (u16::MAX, m),
    };
    let r = r.parse::<u16>().map_err(|_| bad())?;
    if r == 0 {
        return Err(bad());
    }
    Ok((if l == u16::MAX { r } else { l }, r))
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let maps = a
        .ports
        .iter()
        .map(|m| parse(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let url = conn
        .runtime()
        .await?
        .port_forward(k8s_cri::v1::PortForwardRequest {
            pod_sandbox_id: a.pod,
            port: maps.iter().map(|(_, r)| i32::from(*r)).collect(),
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .url;
    let fwd = Arc::new(
        PortForwarder::connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("{url}: {e}"))?,
    );
    let mut tasks = tokio::task::JoinSet::new();
    for (local, remote) in maps {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", local))
            .await
            .with_context(|| format!("listen on 127.0.0.1:{local}"))?;
        let addr = l.local_addr()?;
        println!("Forwarding from {addr} -> {remote}");
        tasks.spawn(fwd.clone().serve_listener(l, remote));
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        r = tasks.join_next() => {
            if let Some(Ok(Err(e))) = r {
                return Err(anyhow::anyhow!("port-forward: {e}"));
            }
            anyhow::bail!("port-forward: the streaming session ended");
        }
    }
    fwd.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn mappings() {
        assert_eq!(parse("8080").unwrap(), (8080, 8080));
        assert_eq!(parse("0:80").unwrap(), (0, 80));
        assert_eq!(parse("9000:80").unwrap(), (9000, 80));
        assert!(parse("80:0").is_err());
        assert!(parse("x:80").is_err());
        assert!(parse("70000").is_err());
    }
}
