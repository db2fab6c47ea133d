//! `crustctl ps`: lists containers as crictl does (running only unless `-a`).

use k8s_cri::v1 as cri;

use super::output::{print, short_id, Format};
use super::pods::{age, labels};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default: running).
    #[arg(long, short = 'a')]
    all: bool,
    /// Filter by id prefix.
    #[arg(long)]
    id: Option<String>,
    /// Filter by pod id.
    #[arg(long, short = 'p')]
    pod: Option<String>,
    /// Filter by name (substring).
    #[arg(long)]
    name: Option<String>,
    /// Filter by state (created, running, exited, unknown).
    #[arg(long, short = 's')]
    state: Option<String>,
    /// Filter by label key=value.
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

pub fn state_name(s: i32) -> &'static str {
    match cri::ContainerState::try_from(s) {
        Ok(cri::ContainerState::ContainerCreated) => "Created",
        Ok(cri::ContainerState::ContainerRunning) => "Running",
        Ok(cri::ContainerState::ContainerExited) => "Exited",
        _ => "Unknown",
    }
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let state = match a.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None if a.all => None,
        None => Some(cri::ContainerState::ContainerRunning),
        Some("created") => Some(cri::ContainerState::ContainerCreated),
        Some("running") => Some(cri::ContainerState::ContainerRunning),
        Some("exited") => Some(cri::ContainerState::ContainerExited),
        Some("unknown") => Some(cri::ContainerState::ContainerUnknown),
        Some(s) => anyhow::bail!("unknown state {s:?}"),
    };
    let filter = cri::ContainerFilter {
        id: a.id.unwrap_or_default(),
        pod_sandbox_id: a.pod.unwrap_or_default(),
        state: state.map(|s| cri::ContainerStateValue { state: s as i32 }),
        label_selector: labels(&a.label)?,
    };
    let mut cs = conn
        .runtime()
        .await?
        .list_containers(cri::ListContainersRequest {
            filter: Some(filter),
        })
        .await
        .map_err(super::rpc)?
        .into_inner()
        .containers;
    cs.retain(|c| {
        a.name.as_ref().is_none_or(|n| {
            c.metadata
                .as_ref()
                .is_some_and(|m| m.name.contains(n.as_str()))
        })
    });
    cs.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    if a.output != Format::Table {
        return print(&serde_json::json!({ "containers": cs }), a.output);
    }
    if a.quiet {
        for c in cs {
            println!("{}", c.id);
        }
        return Ok(());
    }
    println!(
        "{:<15}{:<15}{:<20}{:<10}{:<25}{:<10}POD ID",
        "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT"
    );
    for c in cs {
        let md = c.metadata.clone().unwrap_or_default();
        let (id, pod) = if a.no_trunc {
            (c.id.clone(), c.pod_sandbox_id.clone())
        } else {
            (short_id(&c.id), short_id(&c.pod_sandbox_id))
        };
        println!(
            "{:<15}{:<15}{:<20}{:<10}{:<25}{:<10}{}",
            id,
            short_id(&c.image_id),
            age(c.created_at),
            state_name(c.state),
            md.name,
            md.attempt,
            pod
        );
    }
    Ok(())
}
