//! `crustctl exec [-s] [--exec-timeout S] CONTAINER CMD...`: ExecSync (interactive exec needs
//! the streaming server); exits with the command's exit code.

use std::io::Write;

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Synchronous (the only mode served).
    #[arg(long, short = 's')]
    sync: bool,
    /// Exec timeout in seconds (0: none).
    #[arg(long = "exec-timeout", default_value_t = 0)]
    exec_timeout: i64,
    /// Container id.
    container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let _ = a.sync;
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
