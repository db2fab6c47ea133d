//! crustd: crust's CRI v1 daemon. Builds the core services from the configuration and serves
//! them on a unix socket until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use crust_cri::config::{Config, DEFAULT_CONFIG, DEFAULT_LISTEN, DEFAULT_ROOT, DEFAULT_STATE};
use crust_cri::server;
use crust_daemon::images::Images;

/// crust's CRI v1 daemon.
#[derive(Debug, Parser)]
#[command(name = "crustd", version, about)]
struct Args {
    /// Persistent state directory (content, snapshots, metadata) [default: /var/lib/crust].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Volatile state directory [default: /run/crust].
    #[arg(long)]
    state: Option<PathBuf>,
    /// Unix socket to serve on (path or unix:///path) [default: /run/crust/crust.sock].
    #[arg(long)]
    listen: Option<String>,
    /// Configuration file (TOML); missing is fine unless given explicitly.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides.
    #[arg(long)]
    log_level: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let cfg = Config::load(&cfg_path, args.config.is_some())
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    init_logs(
        args.log_level
            .as_deref()
            .or(cfg.log_level.as_deref())
            .unwrap_or("info"),
        args.log_json,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start tokio runtime")?;
    let r = rt.block_on(run(args, cfg));
    if let Err(e) = &r {
        tracing::error!(error = format!("{e:#}"), "crustd failed");
    }
    r
}

fn init_logs(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

async fn run(args: Args, cfg: Config) -> anyhow::Result<()> {
    let root = args
        .root
        .or(cfg.root)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let state = args
        .state
        .or(cfg.state)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE));
    let listen = args
        .listen
        .map(|l| PathBuf::from(l.strip_prefix("unix://").unwrap_or(&l)))
        .or(cfg.listen)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LISTEN));
    std::fs::create_dir_all(&state)
        .with_context(|| format!("create state dir {}", state.display()))?;
    let registry = cfg.registry;
    let root2 = root.clone();
    let images = tokio::task::spawn_blocking(move || Images::open(&root2, registry))
        .await
        .context("open image store")?
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    let listener = server::bind(&listen)?;
    tracing::info!(root = %root.display(), state = %state.display(), listen = %listen.display(), pid = std::process::id(), "crustd serving");
    server::serve(
        server::router(Arc::new(images)),
        listener,
        &listen,
        shutdown_signal(),
    )
    .await?;
    tracing::info!("crustd stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
