//! `crustctl stats [ID]`: ListContainerStats as crictl shows it: `-o json|yaml` prints one
//! answer in crictl's shape; the table takes two samples `--seconds` apart for the CPU
//! percentage and shows running containers only unless `-a`; `-w` repeats until Ctrl-C.

use std::collections::HashMap;
use std::time::Duration;

use k8s_cri::v1 as cri;

use super::output::{human_size_p, print_list, short_id, Format, Table};
use super::select::labels;
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (or prefix); all when absent.
    id: Option<String>,
    /// Filter by container id (as the argument).
    #[arg(long = "id")]
    id_flag: Option<String>,
    /// Show all containers (default: running ones).
    #[arg(long, short = 'a')]
    all: bool,
    /// Filter by pod id.
    #[arg(long, short = 'p')]
    pod: Option<String>,
    #[command(flatten)]
    sampling: Sampling,
}

/// What `stats` and `statsp` share: filters, format, sampling.
#[derive(Debug, clap::Args)]
pub struct Sampling {
    /// Filter by label key=value (repeatable).
    #[arg(long)]
    pub label: Vec<String>,
    /// Output format: table, json or yaml.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Format,
    /// Sample duration for the CPU percentage, in seconds.
    #[arg(long, short = 's', default_value_t = 1)]
    pub seconds: u64,
    /// Show again and again (Ctrl-C stops).
    #[arg(long, short = 'w')]
    pub watch: bool,
}

impl Sampling {
    /// Prints the table `sample` makes, once or (`-w`) every half second until Ctrl-C.
    pub async fn show<F: std::future::Future<Output = anyhow::Result<Table>>>(
        &self,
        mut sample: impl FnMut() -> F,
    ) -> anyhow::Result<()> {
        loop {
            let table = tokio::select! {
                t = sample() => t?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            if self.watch {
                print!("\x1b[2J\x1b[H");
            }
            table.print();
            if !self.watch {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

async fn list(
    conn: &Conn,
    filter: &cri::ContainerStatsFilter,
) -> anyhow::Result<Vec<cri::ContainerStats>> {
    let mut stats = conn
        .runtime()
        .await?
        .list_container_stats(cri::ListContainerStatsRequest {
            filter: Some(filter.clone()),
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .stats;
    let id = |s: &cri::ContainerStats| s.attributes.clone().unwrap_or_default().id;
    stats.sort_by_key(id);
    Ok(stats)
}

fn value(v: &Option<cri::UInt64Value>) -> u64 {
    v.as_ref().map_or(0, |v| v.value)
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let filter = cri::ContainerStatsFilter {
        id: a.id_flag.clone().or(a.id.clone()).unwrap_or_default(),
        pod_sandbox_id: a.pod.clone().unwrap_or_default(),
        label_selector: labels(&a.sampling.label)?,
    };
    if a.sampling.output != Format::Table {
        let stats = list(conn, &filter).await?;
        return print_list(
            &cri::ListContainerStatsResponse { stats },
            a.sampling.output,
        );
    }
    a.sampling.show(|| sample(conn, &filter, &a)).await
}

async fn sample(
    conn: &Conn,
    filter: &cri::ContainerStatsFilter,
    a: &Args,
) -> anyhow::Result<Table> {
    let old: HashMap<String, cri::ContainerStats> = list(conn, filter)
        .await?
        .into_iter()
        .map(|s| (s.attributes.clone().unwrap_or_default().id, s))
        .collect();
    tokio::time::sleep(Duration::from_secs(a.sampling.seconds)).await;
    let mut t = Table::default();
    t.row(["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"]);
    for s in list(conn, filter).await? {
        let at = s.attributes.clone().unwrap_or_default();
        let cpu_now = s.cpu.unwrap_or_default();
        let cpu = value(&cpu_now.usage_core_nano_seconds);
        let mem = value(&s.memory.unwrap_or_default().working_set_bytes);
        let wl = s.writable_layer.clone().unwrap_or_default();
        if !a.all && cpu == 0 && mem == 0 {
            continue;
        }
        let Some(o) = old.get(&at.id) else {
            continue;
        };
        let o = o.cpu.unwrap_or_default();
        let mut perc = 0.0;
        if cpu != 0 {
            let dt = cpu_now.timestamp - o.timestamp;
            anyhow::ensure!(dt != 0, "cpu stat is not updated during sample");
            perc = cpu.wrapping_sub(value(&o.usage_core_nano_seconds)) as f64 / dt as f64 * 100.0;
        }
        t.row([
            short_id(&at.id),
            at.metadata.map(|m| m.name).unwrap_or_default(),
            format!("{perc:.2}"),
            human_size_p(mem, 4),
            human_size_p(value(&wl.used_bytes), 4),
            value(&wl.inodes_used).to_string(),
        ]);
    }
    Ok(t)
}
