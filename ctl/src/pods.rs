//! `crustctl pods`: lists pod sandboxes as crictl does.

use std::collections::HashMap;

use k8s_cri::v1 as cri;

use super::output::{print, short_id, Format};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Filter by id prefix.
    #[arg(long)]
    id: Option<String>,
    /// Filter by name (substring).
    #[arg(long)]
    name: Option<String>,
    /// Filter by namespace (substring).
    #[arg(long)]
    namespace: Option<String>,
    /// Filter by state (ready, notready).
    #[arg(long, short = 's')]
    state: Option<String>,
    /// Filter by label key=value (repeatable).
    #[arg(long)]
    label: Vec<String>,
    /// Only ids.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Full ids.
    #[arg(long)]
    no_trunc: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: Format,
}

/// Nanoseconds since the epoch, now.
fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn age(ns: i64) -> String {
    let secs = (now_ns() - ns).max(0) / 1_000_000_000;
    match secs {
        s if s < 60 => format!("{s} seconds ago"),
        s if s < 3600 => format!("{} minutes ago", s / 60),
        s if s < 86400 => format!("{} hours ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}

pub fn labels(l: &[String]) -> anyhow::Result<HashMap<String, String>> {
    l.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("label {kv:?} is not key=value"))
        })
        .collect()
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let state = match a.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("ready" | "sandbox_ready") => Some(cri::PodSandboxState::SandboxReady as i32),
        Some("notready" | "sandbox_notready") => Some(cri::PodSandboxState::SandboxNotready as i32),
        Some(s) => anyhow::bail!("unknown state {s:?} (ready, notready)"),
    };
    let filter = cri::PodSandboxFilter {
        id: a.id.unwrap_or_default(),
        state: state.map(|state| cri::PodSandboxStateValue { state }),
        label_selector: labels(&a.label)?,
    };
    let mut items = conn
        .runtime()
        .await?
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .items;
    items.retain(|p| {
        let md = p.metadata.clone().unwrap_or_default();
        a.name.as_ref().is_none_or(|n| md.name.contains(n.as_str()))
            && a.namespace
                .as_ref()
                .is_none_or(|n| md.namespace.contains(n.as_str()))
    });
    items.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    if a.output != Format::Table {
        return print(&serde_json::json!({ "items": items }), a.output);
    }
    if a.quiet {
        for p in items {
            println!("{}", p.id);
        }
        return Ok(());
    }
    println!(
        "{:<15}{:<20}{:<10}{:<30}{:<20}{:<10}RUNTIME",
        "POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"
    );
    for p in items {
        let md = p.metadata.clone().unwrap_or_default();
        let id = if a.no_trunc {
            p.id.clone()
        } else {
            short_id(&p.id)
        };
        let state = if p.state == cri::PodSandboxState::SandboxReady as i32 {
            "Ready"
        } else {
            "NotReady"
        };
        let rt = if p.runtime_handler.is_empty() {
            "(default)"
        } else {
            p.runtime_handler.as_str()
        };
        println!(
            "{:<15}{:<20}{:<10}{:<30}{:<20}{:<10}{}",
            id,
            age(p.created_at),
            state,
            md.name,
            md.namespace,
            md.attempt,
            rt
        );
    }
    Ok(())
}
