//! `crustctl exec [-i] [-t] [-s] [--exec-timeout S] [--transport spdy|websocket] CONTAINER
//! CMD...`: as crictl, plain `exec` (and `-s`) runs ExecSync; `-i` (stdin) or `-t` (tty,
//! raw local terminal, window size followed) streams through the Exec RPC's URL. Exits with
//! the command's exit code.

use std::io::Write;

use super::stream::{run_session, TransportArg};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run synchronously (ExecSync).
    #[arg(long, short = 's')]
    sync: bool,
    /// Keep stdin open (streamed exec).
    #[arg(long, short = 'i')]
    interactive: bool,
    /// Allocate a TTY (streamed exec).
    #[arg(long, short = 't')]
    tty: bool,
    /// Exec timeout in seconds for ExecSync (0: none).
    #[arg(long = "exec-timeout", default_value_t = 0)]
    exec_timeout: i64,
    /// Streaming transport.
    #[arg(long, value_enum, default_value = "spdy")]
    transport: TransportArg,
    /// Container id.
    container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    if a.sync || !(a.interactive || a.tty) {
        return exec_sync(conn, a).await;
    }
    let url = conn
        .runtime()
        .await?
        .exec(k8s_cri::v1::ExecRequest {
            container_id: a.container,
            cmd: a.cmd,
            tty: a.tty,
            stdin: a.interactive,
            stdout: true,
            stderr: !a.tty,
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .url;
    let code = run_session(&url, a.transport, a.interactive, a.tty).await?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

async fn exec_sync(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let r = conn
        .runtime()
        .await?
        .exec_sync(k8s_cri::v1::ExecSyncRequest {
            container_id: a.container,
            cmd: a.cmd,
            timeout: a.exec_timeout,
        })
        .await
        .map_err(super::rpc)?
        .into_inner();
    std::io::stdout().write_all(&r.stdout)?;
    std::io::stderr().write_all(&r.stderr)?;
    if r.exit_code != 0 {
        std::process::exit(r.exit_code);
    }
    Ok(())
}
