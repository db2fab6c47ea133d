//! `crustctl attach [-i] [-t] [--transport spdy|websocket] CONTAINER`: joins the running
//! container's stdio through the Attach RPC's URL (`-i` sends local stdin, `-t` for a tty
//! container: raw local terminal, window size followed). Ends when the container's output
//! ends or on Ctrl-C (without a tty).

use super::stream::{run_session, TransportArg};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Send local stdin to the container.
    #[arg(long, short = 'i')]
    stdin: bool,
    /// The container has a TTY.
    #[arg(long, short = 't')]
    tty: bool,
    /// Streaming transport.
    #[arg(long, value_enum, default_value = "spdy")]
    transport: TransportArg,
    /// Container id.
    container: String,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let url = conn
        .runtime()
        .await?
        .attach(k8s_cri::v1::AttachRequest {
            container_id: a.container,
            stdin: a.stdin,
            tty: a.tty,
            stdout: true,
            stderr: !a.tty,
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .url;
    let code = run_session(&url, a.transport, a.stdin, a.tty).await?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
