//! `crustctl stats [CONTAINER]`: ListContainerStats as crictl prints it.

use k8s_cri::v1 as cri;

use super::output::{human_size, print, short_id, Format};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (prefix); all when absent.
    id: Option<String>,
    /// Filter by pod id.
    #[arg(long, short = 'p')]
    pod: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: Format,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let filter = cri::ContainerStatsFilter {
        id: a.id.unwrap_or_default(),
        pod_sandbox_id: a.pod.unwrap_or_default(),
        ..Default::default()
    };
    let stats = conn
        .runtime()
        .await?
        .list_container_stats(cri::ListContainerStatsRequest {
            filter: Some(filter),
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .stats;
    if a.output != Format::Table {
        return print(&serde_json::json!({ "stats": stats }), a.output);
    }
    println!(
        "{:<15}{:<25}{:<15}{:<12}{:<12}INODES",
        "CONTAINER", "NAME", "CPU (ns)", "MEM", "DISK"
    );
    for s in stats {
        let at = s.attributes.clone().unwrap_or_default();
        let v = |x: Option<cri::UInt64Value>| x.map(|v| v.value).unwrap_or(0);
        let cpu = v(s.cpu.and_then(|c| c.usage_core_nano_seconds));
        let mem = v(s.memory.and_then(|m| m.working_set_bytes));
        let wl = s.writable_layer.unwrap_or_default();
        println!(
            "{:<15}{:<25}{:<15}{:<12}{:<12}{}",
            short_id(&at.id),
            at.metadata.map(|m| m.name).unwrap_or_default(),
            cpu,
            human_size(mem),
            human_size(v(wl.used_bytes)),
            v(wl.inodes_used)
        );
    }
    Ok(())
}
