//! `events [--stats] [--interval D] ID`: resource statistics as runc's JSON events; with
//! `--stats` one snapshot, otherwise a stream (stats every interval, plus "oom" events)
//! until the container stops.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

/// `events` flags.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Display the container's stats then exit.
    #[arg(long)]
    pub stats: bool,
    /// Set the stats collection interval (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id.
    pub id: String,
}

fn parse_interval(s: &str) -> Result<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("--interval {s:?}"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => anyhow::bail!("--interval {s:?}: unknown unit"),
    })
}

/// Prints events.
pub fn run(root: &Path, a: &EventsArgs) -> Result<i32> {
    let st = super::load(root, &a.id)?;
    let cg = st.cgroup.as_ref().context("container has no cgroup")?;
    let snapshot = || -> Result<serde_json::Value> {
        let stats = cg.stats().context("read cgroup stats")?;
        Ok(json!({"type": "stats", "id": st.id, "data": stats}))
    };
    if a.stats {
        println!("{}", snapshot()?);
        return Ok(0);
    }
    let interval = parse_interval(&a.interval)?;
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    while st.init_alive() {
        println!("{}", snapshot()?);
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            println!("{}", json!({"type": "oom", "id": st.id}));
            ooms = now;
        }
        std::thread::sleep(interval);
    }
    Ok(0)
}
