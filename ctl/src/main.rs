//! crustctl: a crictl-compatible client for any CRI endpoint (crust's by default). It speaks
//! CRI (and crust's own `crust.v1.Images/Import`) over the socket only, through
//! `crust-client`; it links neither the core nor the server.
//!
//! Endpoint resolution as crictl: `--runtime-endpoint`/`--image-endpoint` flags, then
//! `CONTAINER_RUNTIME_ENDPOINT`/`IMAGE_SERVICE_ENDPOINT`, then the config file (`--config`,
//! default `/etc/crictl.yaml`, keys `runtime-endpoint`, `image-endpoint`, `timeout`), then
//! `unix:///run/crust/crust.sock`. One file per verb; output in crictl's shapes ([`output`],
//! [`proto`]); crictl's JSON/YAML pod and container config files ([`config`]).

mod attach;
mod config;
mod create;
mod exec;
mod imagefsinfo;
mod images;
mod import;
mod info;
mod inspect;
mod inspecti;
mod inspectp;
mod logs;
mod output;
mod pods;
mod port_forward;
mod proto;
mod ps;
mod pull;
mod rm;
mod rmi;
mod rmp;
mod runp;
mod select;
mod start;
mod stats;
mod statsp;
mod stop;
mod stopp;
mod stream;
mod version;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde::Deserialize;
use tonic::transport::Channel;

/// crustctl: a crictl-compatible client for CRI runtimes (crust's crustd by default).
///
/// Speaks the CRI over a unix socket, with crictl's verbs, flags and output shapes
/// (`-o json|yaml` in protobuf's JSON mapping, as crictl prints them). Reads crictl's
/// config file, /etc/crictl.yaml (`runtime-endpoint`, `image-endpoint`, `timeout`;
/// `--config` names another); without one it uses unix:///run/crust/crust.sock.
#[derive(Debug, Parser)]
#[command(name = "crustctl", version)]
struct Cli {
    /// CRI runtime endpoint (unix:///path or tcp://host:port). Before the verb, as crictl's
    /// (`ps -r` resolves image paths).
    #[arg(long, short = 'r', env = "CONTAINER_RUNTIME_ENDPOINT")]
    runtime_endpoint: Option<String>,
    /// CRI image endpoint (default: the runtime endpoint). Before the verb, as crictl's
    /// (`exec -i` is stdin).
    #[arg(long, short = 'i', env = "IMAGE_SERVICE_ENDPOINT")]
    image_endpoint: Option<String>,
    /// Connection timeout in seconds. Before the verb, as crictl's (`exec -t` is a tty).
    #[arg(long, short = 't')]
    timeout: Option<u64>,
    /// crictl config file (YAML or JSON).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "CRI_CONFIG_FILE",
        default_value = "/etc/crictl.yaml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List images (or `images import FILE`).
    #[command(visible_aliases = ["image", "img"])]
    Images(images::Args),
    /// Pull an image.
    Pull(pull::Args),
    /// Remove one or more images.
    Rmi(rmi::Args),
    /// Show image status.
    Inspecti(inspecti::Args),
    /// Show image filesystem usage.
    Imagefsinfo(imagefsinfo::Args),
    /// Import an OCI or docker-save archive through crustd (`crustd import` while stopped).
    Import(import::Args),
    /// Runtime name and versions.
    Version(version::Args),
    /// Runtime status and configuration.
    Info(info::Args),
    /// Run a pod sandbox from a JSON/YAML config.
    Runp(runp::Args),
    /// List pod sandboxes.
    Pods(pods::Args),
    /// Show pod sandbox status (-o json|yaml|go-template|table).
    Inspectp(inspectp::Args),
    /// Stop pod sandboxes.
    Stopp(stopp::Args),
    /// Remove pod sandboxes.
    Rmp(rmp::Args),
    /// Create a container: POD-ID CONTAINER-CONFIG POD-CONFIG.
    Create(create::Args),
    /// Start containers.
    Start(start::Args),
    /// List containers.
    Ps(ps::Args),
    /// Show container status (-o json|yaml|go-template|table).
    Inspect(inspect::Args),
    /// Stop containers.
    Stop(stop::Args),
    /// Remove containers.
    Rm(rm::Args),
    /// Print a container's log (-f, --tail, --since, -t, -p, --limit-bytes).
    Logs(logs::Args),
    /// Run a command in a container (ExecSync; streamed with -i/-t).
    Exec(exec::Args),
    /// Attach to a running container's stdio.
    Attach(attach::Args),
    /// Forward local ports to ports inside a pod: POD [LOCAL:]REMOTE...
    PortForward(port_forward::Args),
    /// Container resource usage.
    Stats(stats::Args),
    /// Pod resource usage.
    Statsp(statsp::Args),
}

/// crictl.yaml.
#[derive(Debug, Default, Deserialize)]
struct CrictlConfig {
    #[serde(rename = "runtime-endpoint", default)]
    runtime_endpoint: Option<String>,
    #[serde(rename = "image-endpoint", default)]
    image_endpoint: Option<String>,
    #[serde(default)]
    timeout: Option<u64>,
}

/// Resolved connection settings.
#[derive(Debug, Clone)]
struct Conn {
    runtime_endpoint: String,
    image_endpoint: String,
    timeout: Duration,
}

impl Conn {
    async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(crust_client::connect(&self.image_endpoint, self.timeout).await?)
    }

    async fn images(&self) -> anyhow::Result<ImageServiceClient<Channel>> {
        Ok(ImageServiceClient::new(self.channel().await?))
    }

    async fn runtime(&self) -> anyhow::Result<RuntimeServiceClient<Channel>> {
        let ch = crust_client::connect(&self.runtime_endpoint, self.timeout).await?;
        Ok(RuntimeServiceClient::new(ch))
    }
}

fn resolve(cli: &Cli) -> anyhow::Result<Conn> {
    let file: CrictlConfig = match std::fs::read_to_string(&cli.config) {
        Ok(t) => {
            serde_yaml::from_str(&t).with_context(|| format!("parse {}", cli.config.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CrictlConfig::default(),
        Err(e) => return Err(e).with_context(|| format!("read {}", cli.config.display())),
    };
    let runtime = cli
        .runtime_endpoint
        .clone()
        .or(file.runtime_endpoint)
        .unwrap_or_else(|| format!("unix://{}", crust_client::DEFAULT_SOCKET));
    let image = cli
        .image_endpoint
        .clone()
        .or(file.image_endpoint)
        .unwrap_or_else(|| runtime.clone());
    Ok(Conn {
        runtime_endpoint: runtime,
        image_endpoint: image,
        timeout: Duration::from_secs(cli.timeout.or(file.timeout).unwrap_or(10)),
    })
}

/// A gRPC status as a one-line error.
fn rpc(st: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("rpc error: code = {:?} desc = {}", st.code(), st.message())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let r = async {
        let conn = resolve(&cli)?;
        match cli.cmd {
            Cmd::Images(a) => images::run(&conn, a).await,
            Cmd::Pull(a) => pull::run(&conn, a).await,
            Cmd::Rmi(a) => rmi::run(&conn, a).await,
            Cmd::Inspecti(a) => inspecti::run(&conn, a).await,
            Cmd::Imagefsinfo(a) => imagefsinfo::run(&conn, a).await,
            Cmd::Import(a) => import::run(&conn, a).await,
            Cmd::Version(a) => version::run(&conn, a).await,
            Cmd::Info(a) => info::run(&conn, a).await,
            Cmd::Runp(a) => runp::run(&conn, a).await,
            Cmd::Pods(a) => pods::run(&conn, a).await,
            Cmd::Inspectp(a) => inspectp::run(&conn, a).await,
            Cmd::Stopp(a) => stopp::run(&conn, a).await,
            Cmd::Rmp(a) => rmp::run(&conn, a).await,
            Cmd::Create(a) => create::run(&conn, a).await,
            Cmd::Start(a) => start::run(&conn, a).await,
            Cmd::Ps(a) => ps::run(&conn, a).await,
            Cmd::Inspect(a) => inspect::run(&conn, a).await,
            Cmd::Stop(a) => stop::run(&conn, a).await,
            Cmd::Rm(a) => rm::run(&conn, a).await,
            Cmd::Logs(a) => logs::run(&conn, a).await,
            Cmd::Exec(a) => exec::run(&conn, a).await,
            Cmd::Attach(a) => attach::run(&conn, a).await,
            Cmd::PortForward(a) => port_forward::run(&conn, a).await,
            Cmd::Stats(a) => stats::run(&conn, a).await,
            Cmd::Statsp(a) => statsp::run(&conn, a).await,
        }
    }
    .await;
    if let Err(e) = r {
        eprintln!("crustctl: {e:#}");
        std::process::exit(1);
    }
}
