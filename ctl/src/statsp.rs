//! `crustctl statsp [ID]`: ListPodSandboxStats as crictl shows it: `-o json|yaml` prints
//! one answer in crictl's shape; the table takes two samples `--seconds` apart for the CPU
//! percentage; `-w` repeats until Ctrl-C.

use std::collections::HashMap;
use std::time::Duration;

use k8s_cri::v1 as cri;

use super::output::{human_size_p, print_list, short_id, Format, Table};
use super::select::labels;
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod id (or prefix); all when absent.
    id: Option<String>,
    /// Filter by pod id (as the argument).
    #[arg(long = "id")]
    id_flag: Option<String>,
    #[command(flatten)]
    sampling: super::stats::Sampling,
}

async fn list(
    conn: &Conn,
    filter: &cri::PodSandboxStatsFilter,
) -> anyhow::Result<Vec<cri::PodSandboxStats>> {
    let mut stats = conn
        .runtime()
        .await?
        .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest {
            filter: Some(filter.clone()),
        })
        .await
        .map_err(|e| anyhow::anyhow!("list pod sandbox stats: {}", super::rpc(e)))?
        .into_inner()
        .stats;
    stats.sort_by_key(|s| s.attributes.clone().unwrap_or_default().id);
    Ok(stats)
}

/// (cpu ns, its timestamp, working set) of a pod's Linux stats.
fn usage(s: &cri::PodSandboxStats) -> (u64, i64, u64) {
    let l = s.linux.clone().unwrap_or_default();
    let cpu = l.cpu.unwrap_or_default();
    (
        cpu.usage_core_nano_seconds.map_or(0, |v| v.value),
        cpu.timestamp,
        l.memory
            .and_then(|m| m.working_set_bytes)
            .map_or(0, |v| v.value),
    )
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let filter = cri::PodSandboxStatsFilter {
        id: a.id_flag.clone().or(a.id.clone()).unwrap_or_default(),
        label_selector: labels(&a.sampling.label)?,
    };
    if a.sampling.output != Format::Table {
        let stats = list(conn, &filter).await?;
        return print_list(
            &cri::ListPodSandboxStatsResponse { stats },
            a.sampling.output,
        );
    }
    a.sampling
        .show(|| sample(conn, &filter, a.sampling.seconds))
        .await
}

async fn sample(
    conn: &Conn,
    filter: &cri::PodSandboxStatsFilter,
    seconds: u64,
) -> anyhow::Result<Table> {
    let old: HashMap<String, cri::PodSandboxStats> = list(conn, filter)
        .await?
        .into_iter()
        .map(|s| (s.attributes.clone().unwrap_or_default().id, s))
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let mut t = Table::default();
    t.row(["POD", "POD ID", "CPU %", "MEM"]);
    for s in list(conn, filter).await? {
        let at = s.attributes.clone().unwrap_or_default();
        let (cpu, ts, mem) = usage(&s);
        if cpu == 0 && mem == 0 {
            continue;
        }
        let Some(o) = old.get(&at.id) else {
            continue;
        };
        let (ocpu, ots, _) = usage(o);
        let mut perc = 0.0;
        if cpu != 0 {
            anyhow::ensure!(ts != ots, "cpu stat is not updated during sample");
            perc = cpu.wrapping_sub(ocpu) as f64 / (ts - ots) as f64 * 100.0;
        }
        t.row([
            at.metadata.map(|m| m.name).unwrap_or_default(),
            short_id(&at.id),
            format!("{perc:.2}"),
            human_size_p(mem, 4),
        ]);
    }
    Ok(t)
}
