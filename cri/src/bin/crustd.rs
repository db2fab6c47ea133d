//! crustd: crust's CRI v1 daemon. Builds the core services from the configuration and serves
//! them on a unix socket until SIGTERM or SIGINT. `crustd import FILE` imports an image
//! archive straight into the root while crustd is stopped (offline; crustctl's `import` goes
//! through a running crustd instead).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use crust_cri::config::{Config, DEFAULT_CONFIG, DEFAULT_LISTEN, DEFAULT_ROOT, DEFAULT_STATE};
use crust_cri::config::{NetworkSection, RuntimeSection, StreamingSection};
use crust_cri::server;
use crust_cri::streaming::StreamingServer;
use crust_daemon::images::Images;
use crust_daemon::network::{NetworkConfig, NetworkManager};
use crust_daemon::runtime::shim::ShimConfig;
use crust_daemon::runtime::{Runtime, RuntimeConfig};

/// crustd: crust's CRI v1 daemon (kubelet's and crictl's container runtime endpoint).
///
/// Serves the CRI RuntimeService and ImageService on a unix socket. Reads its configuration
/// from /etc/crust/config.toml (TOML; `--config` names another; flags override the file).
#[derive(Debug, Parser)]
#[command(name = "crustd", version)]
struct Args {
    /// Persistent state directory (content, snapshots, metadata) [default: /var/lib/crust].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Volatile state directory [default: /run/crust].
    #[arg(long)]
    state: Option<PathBuf>,
    /// Unix socket to serve on (path or unix:///path) [default: /run/crust/crust.sock].
    #[arg(long)]
    listen: Option<String>,
    /// Configuration file (TOML) [default: /etc/crust/config.toml]; missing is fine unless
    /// given explicitly.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides.
    #[arg(long)]
    log_level: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Import an OCI archive/layout tar or a `docker save` tarball straight into the root
    /// (`--root`, else the config's, else /var/lib/crust) while crustd is stopped. With crustd
    /// running use `crustctl import FILE`.
    Import {
        /// The archive.
        file: PathBuf,
        /// Name for images the archive leaves unnamed (or repository for a bare tag).
        #[arg(long)]
        name: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(
            crust_daemon::runtime::pod::init::POD_INIT_ARG,
        ))
    {
        // A pod's PID namespace init (see crust_daemon::runtime::pod::init), before any thread.
        crust_daemon::runtime::pod::init::launch_main();
    }
    let args = Args::parse();
    // Two malloc arenas are plenty for a mostly idle daemon and keep its RSS small.
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    // The service manager's socket is crustd's alone: taken out of the environment before
    // any thread exists, so shims, pod inits, CNI plugins and runtimes never inherit it.
    let _ = NOTIFY_SOCKET.set(std::env::var_os("NOTIFY_SOCKET"));
    std::env::remove_var("NOTIFY_SOCKET");
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
    if let Some(Cmd::Import { file, name }) = args.cmd {
        let root = args
            .root
            .or(cfg.root)
            .unwrap_or_else(|| DEFAULT_ROOT.into());
        return import_offline(&root, cfg.registry, &file, name);
    }
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
    crust_daemon::perms::dir(&state, crust_daemon::perms::TOP)
        .with_context(|| format!("create state dir {}", state.display()))?;
    let registry = cfg.registry;
    let (cfg_runtime, cfg_network, cfg_streaming) = (cfg.runtime, cfg.network, cfg.streaming);
    let root2 = root.clone();
    let images = tokio::task::spawn_blocking(move || Images::open(&root2, registry))
        .await
        .context("open image store")?
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    let images = Arc::new(images);
    let runtime = build_runtime(
        &cfg_runtime,
        &cfg_network,
        &root,
        &state,
        &listen,
        images.clone(),
    )
    .await?;
    let streaming = start_streaming(&cfg_streaming, runtime.clone()).await?;
    let listener = server::bind(&listen)?;
    tokio::spawn(trim_heap());
    notify_ready();
    tracing::info!(root = %root.display(), state = %state.display(), listen = %listen.display(), streaming = %streaming.local_addr(), pid = std::process::id(), "crustd serving");
    server::serve(
        server::router(images, runtime, Some(streaming.clone())),
        listener,
        &listen,
        shutdown_signal(),
    )
    .await?;
    streaming.shutdown();
    tracing::info!("crustd stopped");
    Ok(())
}

/// `crustd import`: opens the image store at `root` (which fails while a crustd holds it)
/// and imports `file` into it, printing each image as crustctl's `import` does.
fn import_offline(
    root: &Path,
    registry: crust_daemon::images::RegistryConfig,
    file: &Path,
    name: Option<String>,
) -> anyhow::Result<()> {
    let path = std::path::absolute(file).with_context(|| format!("resolve {}", file.display()))?;
    let images = Images::open(root, registry).map_err(|e| {
        anyhow::anyhow!(
            "open the image store in {}: {} (is crustd running on it? then use `crustctl import`)",
            root.display(),
            crust_cri::status::message(&e)
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start tokio runtime")?;
    let req = crust_cri::import::ImportRequest {
        path: path.display().to_string(),
        name: name.unwrap_or_default(),
    };
    let resp = rt
        .block_on(crust_cri::import::import(&images, req))
        .map_err(|st| anyhow::anyhow!("import {}: {}", path.display(), st.message()))?;
    for i in resp.images {
        println!("Imported {} {}", i.repo_tags.join(","), i.id);
    }
    Ok(())
}

/// The streaming server behind Exec, Attach and PortForward, per `[streaming]`.
async fn start_streaming(
    sc: &StreamingSection,
    runtime: Arc<Runtime>,
) -> anyhow::Result<StreamingServer> {
    let addr = sc.socket_addr().map_err(anyhow::Error::msg)?;
    let ttl = sc.token_ttl().map_err(anyhow::Error::msg)?;
    crust_cri::streaming::start(runtime, addr, None, ttl)
        .await
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))
}

/// A binary given in the config, else found next to crustd, else by name in PATH.
fn find_binary(given: Option<&Path>, name: &str) -> PathBuf {
    if let Some(g) = given {
        return g.to_path_buf();
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// The runtime service: network manager (unless disabled), shim settings, recovery.
async fn build_runtime(
    rc: &RuntimeSection,
    nc: &NetworkSection,
    root: &Path,
    state: &Path,
    listen: &Path,
    images: Arc<Images>,
) -> anyhow::Result<Arc<Runtime>> {
    let enabled = nc.enabled.unwrap_or(true);
    let network = if enabled {
        let mut n = NetworkConfig::new(root, state);
        if let Some(b) = &nc.bridge {
            n.bridge.name = b.clone();
        }
        if let Some(s) = &nc.subnet {
            n.bridge.subnet = Some(s.parse().with_context(|| format!("network.subnet {s:?}"))?);
        }
        if let Some(d) = &nc.cni_conf_dir {
            n.cni.conf_dir = d.clone();
        }
        if let Some(d) = &nc.cni_bin_dirs {
            n.cni.bin_dirs = d.clone();
        }
        let m =
            NetworkManager::new(n).map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
        m.watch()
            .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
        Some(m)
    } else {
        None
    };
    let cfg = RuntimeConfig {
        root: root.to_path_buf(),
        state: state.to_path_buf(),
        shim: ShimConfig {
            binary: find_binary(rc.shim.as_deref(), "crust-shim"),
            runtime: find_binary(rc.runtime.as_deref(), "crust-runc"),
            state_dir: state.join("shims"),
            runtime_root: state.join("runc"),
            address: listen.display().to_string(),
        },
        cgroup_root: rc.cgroup_root.clone().unwrap_or_else(|| "/crust".into()),
        network: enabled,
    };
    let rt = Runtime::open(cfg, images, network)
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    rt.recover()
        .await
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    Ok(rt)
}

/// Gives freed heap back to the kernel every few seconds, so RSS falls back after a
/// pull or a burst of requests (glibc keeps freed memory in its arenas otherwise).
async fn trim_heap() {
    let mut t = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        t.tick().await;
        // SAFETY: malloc_trim only releases free memory held by the allocator.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// `$NOTIFY_SOCKET` as crustd found it at start.
static NOTIFY_SOCKET: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();

/// Tells the service manager that crustd serves (`READY=1` on `$NOTIFY_SOCKET`, a path or
/// `@abstract` name), as systemd's Type=notify expects. Hand-written: the protocol is
/// one datagram, not worth a dependency.
fn notify_ready() {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(target) = NOTIFY_SOCKET.get().cloned().flatten() else {
        return;
    };
    let r = UnixDatagram::unbound().and_then(|s| {
        let b = target.as_bytes();
        let addr = match b.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&target)?,
        };
        let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
        s.send_to_addr(msg.as_bytes(), &addr).map(|_| ())
    });
    match r {
        Ok(()) => tracing::debug!(socket = ?target, "sd_notify READY=1 sent"),
        Err(e) => tracing::warn!(socket = ?target, error = %e, "sd_notify READY=1 failed"),
    }
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
