//! crustd: crust's CRI v1 daemon. Builds the core services from the configuration and serves
//! them on a unix socket until SIGTERM, SIGINT or SIGQUIT; SIGHUP reloads the log level.
//! `crustd config` prints the effective configuration instead; `crustd import FILE` imports
//! an image archive straight into the root while crustd is stopped (offline; crustctl's
//! `import` goes through a running crustd instead).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use crust_cri::config::{CgroupDriver, NetworkSection, RuntimeSection, StreamingSection};
use crust_cri::config::{Config, Flags, DEFAULT_CONFIG};
use crust_cri::logging::{Logging, Reloaded};
use crust_cri::metrics::http::MetricsServer;
use crust_cri::metrics::Metrics;
use crust_cri::server;
use crust_cri::signals::Signals;
use crust_cri::streaming::StreamingServer;
use crust_daemon::images::Images;
use crust_daemon::network::{NetworkConfig, NetworkManager};
use crust_daemon::runtime::shim::ShimConfig;
use crust_daemon::runtime::{cgroup, Runtime, RuntimeConfig};

/// crustd: crust's CRI v1 daemon (kubelet's and crictl's container runtime endpoint).
///
/// Serves the CRI RuntimeService and ImageService on a unix socket. Reads its configuration
/// from /etc/crust/config.toml (TOML; `--config` names another; flags override the file).
#[derive(Debug, Parser)]
#[command(name = "crustd", version = crust_cri::version::LONG)]
struct Args {
    /// Persistent state directory (content, snapshots, metadata) [default: /var/lib/crust].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Volatile state directory [default: /run/crust].
    #[arg(long, global = true)]
    state: Option<PathBuf>,
    /// Unix socket to serve on (path or unix:///path) [default: /run/crust/crust.sock].
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Configuration file (TOML) [default: /etc/crust/config.toml]; missing is fine unless
    /// given explicitly.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the effective configuration (defaults, then the config file, then the flags)
    /// as TOML, and exit.
    Config,
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

/// Where the configuration came from, for SIGHUP.
struct ConfigSource {
    path: PathBuf,
    required: bool,
    flags: Flags,
}

impl ConfigSource {
    fn load(&self) -> anyhow::Result<Config> {
        Config::load(&self.path, self.required)
            .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))
    }
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
    let source = ConfigSource {
        path: args
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
        required: args.config.is_some(),
        flags: Flags {
            root: args.root.clone(),
            state: args.state.clone(),
            listen: args.listen.clone(),
            log_level: args.log_level.clone(),
        },
    };
    let file = source.load()?;
    let cfg = file.effective(&source.flags);
    if let Some(Cmd::Config) = args.cmd {
        print!("{}", effective_toml(&cfg, &source)?);
        return Ok(());
    }
    let logging = crust_cri::logging::init(
        source.flags.log_level.as_deref(),
        file.log_level.as_deref(),
        args.log_json,
    )
    .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    log_panics();
    if let Some(Cmd::Import { file, name }) = args.cmd {
        let root = cfg.root.clone().unwrap_or_default();
        return import_offline(&root, cfg.registry, &file, name);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start tokio runtime")?;
    let r = rt.block_on(run(cfg, source, logging));
    if let Err(e) = &r {
        tracing::error!(error = format!("{e:#}"), "crustd failed");
    }
    r
}

/// `crustd config`'s output: a header naming the sources, then the TOML.
fn effective_toml(cfg: &Config, source: &ConfigSource) -> anyhow::Result<String> {
    let mut out = format!(
        "# crustd {}: effective configuration (defaults, then {}{}, then flags)\n",
        crust_cri::version::LONG,
        source.path.display(),
        if source.path.exists() {
            ""
        } else {
            " (absent)"
        },
    );
    if let Ok(env) = std::env::var("RUST_LOG") {
        out.push_str(&format!("# RUST_LOG={env:?} overrides log_level\n"));
    }
    if cfg.network.subnet.is_none() {
        out.push_str(
            "# network.subnet unset: the pod CIDR from UpdateRuntimeConfig, else 10.88.0.0/16\n",
        );
    }
    out.push('\n');
    out.push_str(&toml::to_string(cfg).context("print the configuration as TOML")?);
    Ok(out)
}

/// Panics are logged (with their location) before the default report, so a crash of a
/// request's task shows in crustd's log as what it was.
fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(%location, %message, "panic");
        default(info);
    }));
}

/// What crustd owns while it runs: its root, its state directory and its socket.
struct Owned {
    _locks: [crust_cri::lock::Lock; 3],
}

/// Takes the locks of root, state and socket, and refuses a socket that a live server
/// answers: before anything in them is read or changed.
async fn take_ownership(root: &Path, state: &Path, listen: &Path) -> anyhow::Result<Owned> {
    let lock = |r: Result<_, crust_cri::lock::Error>| {
        r.map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))
    };
    // Made with their modes (see crust_daemon::perms) before the lock files go in them.
    for (dir, what) in [(state, "state"), (root, "root")] {
        crust_daemon::perms::dir(dir, crust_daemon::perms::TOP)
            .with_context(|| format!("create {what} dir {}", dir.display()))?;
    }
    let state_lock = lock(crust_cri::lock::dir(state, "state directory"))?;
    let root_lock = lock(crust_cri::lock::dir(root, "root"))?;
    let socket_lock = lock(crust_cri::lock::socket(listen))?;
    server::ensure_free(listen)
        .await
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    Ok(Owned {
        _locks: [state_lock, root_lock, socket_lock],
    })
}

async fn run(cfg: Config, source: ConfigSource, mut logging: Logging) -> anyhow::Result<()> {
    // First: from here on no signal kills crustd the default way.
    let mut signals = Signals::install().context("install signal handlers")?;
    let root = cfg.root.clone().unwrap_or_default();
    let state = cfg.state.clone().unwrap_or_default();
    let listen = cfg.listen.clone().unwrap_or_default();
    let _owned = take_ownership(&root, &state, &listen).await?;
    let start = start(&cfg, &root, &state, &listen);
    let (images, runtime, streaming) = tokio::select! {
        r = start => r?,
        s = signals.until_shutdown(|| tracing::info!("SIGHUP during start-up: nothing to reload yet")) => {
            tracing::info!(signal = s, "stopped during start-up");
            return Ok(());
        }
    };
    let (metrics, metrics_server) = start_metrics(&cfg, &runtime, &images).await?;
    let (listener, socket) = server::bind(&listen)?;
    // The host half of recovery (network reconcile, orphan shims, leftovers) once the
    // socket is bound: no answer needs it; RunPodSandbox and CreateContainer wait for it.
    let host = runtime.clone();
    tokio::spawn(async move { host.recover_host().await });
    tokio::spawn(trim_heap());
    notify_ready();
    let metrics_addr = metrics_server.as_ref().map(|m| m.local_addr().to_string());
    tracing::info!(root = %root.display(), state = %state.display(), listen = %listen.display(), streaming = %streaming.local_addr(), metrics = metrics_addr.as_deref().unwrap_or("off"), pid = std::process::id(), version = crust_cri::version::LONG, "crustd serving");
    let running = cfg.clone();
    let reload = move || reload(&source, &running, &mut logging);
    let (close, closing) = server::closing();
    server::serve(
        server::router(images, runtime, Some(streaming.clone()), metrics, closing),
        listener,
        socket,
        async move {
            signals.until_shutdown(reload).await;
        },
        close,
    )
    .await?;
    streaming.shutdown();
    drop(metrics_server);
    tracing::info!("crustd stopped");
    Ok(())
}

/// Builds the services: image store, runtime (recovered), streaming server.
async fn start(
    cfg: &Config,
    root: &Path,
    state: &Path,
    listen: &Path,
) -> anyhow::Result<(Arc<Images>, Arc<Runtime>, StreamingServer)> {
    crust_daemon::perms::dir(state, crust_daemon::perms::TOP)
        .with_context(|| format!("create state dir {}", state.display()))?;
    let registry = cfg.registry.clone();
    let root2 = root.to_path_buf();
    let images = tokio::task::spawn_blocking(move || Images::open(&root2, registry))
        .await
        .context("open image store")?
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    let images = Arc::new(images);
    let runtime = build_runtime(
        &cfg.runtime,
        &cfg.network,
        root,
        state,
        listen,
        images.clone(),
    )
    .await?;
    let streaming = start_streaming(&cfg.streaming, runtime.clone()).await?;
    Ok((images, runtime, streaming))
}

/// The metrics and their `/metrics` endpoint, when `[metrics] address` is set.
async fn start_metrics(
    cfg: &Config,
    runtime: &Arc<Runtime>,
    images: &Arc<Images>,
) -> anyhow::Result<(Option<Arc<Metrics>>, Option<MetricsServer>)> {
    let Some(addr) = cfg.metrics.socket_addr().map_err(anyhow::Error::msg)? else {
        return Ok((None, None));
    };
    let m = Arc::new(Metrics::new(runtime.clone(), images.clone()));
    let server = crust_cri::metrics::http::start(addr, m.clone())
        .await
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
    Ok((Some(m), Some(server)))
}

/// SIGHUP: reads the config file again and applies `log_level` (unless RUST_LOG or
/// --log-level set it); other changes are named as needing a restart.
fn reload(source: &ConfigSource, running: &Config, logging: &mut Logging) {
    let new = match source.load() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(config = %source.path.display(), error = format!("{e:#}"), "SIGHUP: config not reloaded");
            return;
        }
    };
    match logging.reload(new.log_level.as_deref()) {
        Ok(Reloaded::Changed(f)) => tracing::info!(log_level = %f, "SIGHUP: log level changed"),
        Ok(Reloaded::Unchanged(f)) => tracing::info!(log_level = %f, "SIGHUP: log level unchanged"),
        Ok(Reloaded::Pinned(by)) => {
            tracing::info!(
                set_by = by,
                "SIGHUP: log level is set by {by}, not by the config file"
            )
        }
        Err(e) => tracing::warn!(
            error = crust_cri::status::message(&e),
            "SIGHUP: log level not changed"
        ),
    }
    let changed = running.restart_needed(&new.effective(&source.flags));
    if !changed.is_empty() {
        tracing::warn!(
            changed = changed.join(", "),
            "SIGHUP: these settings changed in the config file and apply only after a restart"
        );
    }
}

/// `crustd import`: takes the root's lock (refused, naming the holder's pid, while a crustd
/// runs on it), opens the image store at `root` and imports `file` into it, printing each
/// image as crustctl's `import` does.
fn import_offline(
    root: &Path,
    registry: crust_daemon::images::RegistryConfig,
    file: &Path,
    name: Option<String>,
) -> anyhow::Result<()> {
    let path = std::path::absolute(file).with_context(|| format!("resolve {}", file.display()))?;
    let _lock = crust_cri::lock::dir(root, "root").map_err(|e| {
        anyhow::anyhow!(
            "{} (with crustd running, use `crustctl import`)",
            crust_cri::status::message(&e)
        )
    })?;
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

/// The runtime service: network manager (unless disabled), shim settings, recovery of the
/// records (the host's is spawned once the socket is bound).
async fn build_runtime(
    rc: &RuntimeSection,
    nc: &NetworkSection,
    root: &Path,
    state: &Path,
    listen: &Path,
    images: Arc<Images>,
) -> anyhow::Result<Arc<Runtime>> {
    let cgroup_driver = match rc.cgroup_driver.unwrap_or_default() {
        CgroupDriver::Cgroupfs => cgroup::CgroupDriver::Cgroupfs,
        CgroupDriver::Systemd => {
            // Checked here rather than at the first pod: a node whose kubelet expects
            // the systemd driver must not come up with a runtime that cannot provide it.
            if !cgroup::systemd_running() {
                anyhow::bail!("runtime.cgroup_driver = \"systemd\": systemd is not the init system here (no /run/systemd/system); use \"cgroupfs\"");
            }
            if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                anyhow::bail!("runtime.cgroup_driver = \"systemd\" needs cgroup v2 (unified hierarchy) only; this host mounts cgroup v1");
            }
            cgroup::CgroupDriver::Systemd
        }
    };
    let cgroup_root = rc
        .cgroup_root
        .clone()
        .unwrap_or_else(|| match cgroup_driver {
            cgroup::CgroupDriver::Cgroupfs => crust_cri::config::DEFAULT_CGROUP_ROOT.into(),
            cgroup::CgroupDriver::Systemd => crust_cri::config::DEFAULT_SYSTEMD_CGROUP_ROOT.into(),
        });
    cgroup::check_root(cgroup_driver, &cgroup_root)
        .map_err(|e| anyhow::anyhow!(crust_cri::status::message(&e)))?;
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
            binary: crust_cri::config::resolve_binary(rc.shim.as_deref(), "crust-shim"),
            runtime: crust_cri::config::resolve_binary(rc.runtime.as_deref(), "crust-runc"),
            state_dir: state.join("shims"),
            runtime_root: state.join("runc"),
            address: listen.display().to_string(),
        },
        cgroup_root,
        cgroup_driver,
        network: enabled,
        cdi_spec_dirs: rc.cdi_spec_dirs.clone().unwrap_or_else(|| {
            crust_daemon::cdi::DEFAULT_SPEC_DIRS
                .iter()
                .map(PathBuf::from)
                .collect()
        }),
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
