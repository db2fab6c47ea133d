//! `crustctl pods`: lists pod sandboxes as crictl does, newest first; `-o json|yaml`
//! prints the ListPodSandboxResponse in crictl's shape, `-v` one block per pod.

use k8s_cri::v1 as cri;

use super::output::{age, go_time, print_list, short_id, Format, Table};
use super::ps::key_values;
use super::select::{labels, ListFlags, Pattern};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Filter by pod id (or prefix).
    #[arg(long)]
    id: Option<String>,
    /// Filter by pod name (regular expression).
    #[arg(long)]
    name: Option<String>,
    /// Filter by namespace (regular expression).
    #[arg(long)]
    namespace: Option<String>,
    /// Filter by state (ready, notready).
    #[arg(long, short = 's')]
    state: Option<String>,
    /// Filter by label key=value (repeatable).
    #[arg(long)]
    label: Vec<String>,
    #[command(flatten)]
    list: ListFlags,
}

pub fn state_name(s: i32) -> &'static str {
    if s == cri::PodSandboxState::SandboxReady as i32 {
        "Ready"
    } else {
        "NotReady"
    }
}

fn runtime_handler(p: &cri::PodSandbox) -> &str {
    if p.runtime_handler.is_empty() {
        "(default)"
    } else {
        &p.runtime_handler
    }
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let state = match a.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("ready") => Some(cri::PodSandboxState::SandboxReady as i32),
        Some("notready") => Some(cri::PodSandboxState::SandboxNotready as i32),
        Some(s) => anyhow::bail!("--state {s:?}: should be ready or notready"),
    };
    let (name, namespace) = (
        Pattern::new("name", a.name.as_deref())?,
        Pattern::new("namespace", a.namespace.as_deref())?,
    );
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
        name.matches(&md.name) && namespace.matches(&md.namespace)
    });
    items.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    if let Some(n) = a.list.newest() {
        items.truncate(n);
    }
    if a.list.output != Format::Table {
        return print_list(&cri::ListPodSandboxResponse { items }, a.list.output);
    }
    if a.list.quiet {
        for p in items {
            println!("{}", p.id);
        }
        return Ok(());
    }
    if a.list.verbose {
        for p in &items {
            print!("{}", verbose(p));
        }
        return Ok(());
    }
    let mut t = Table::default();
    t.row([
        "POD ID",
        "CREATED",
        "STATE",
        "NAME",
        "NAMESPACE",
        "ATTEMPT",
        "RUNTIME",
    ]);
    for p in &items {
        let md = p.metadata.clone().unwrap_or_default();
        let id = if a.list.no_trunc {
            p.id.clone()
        } else {
            short_id(&p.id)
        };
        t.row([
            id,
            age(p.created_at),
            state_name(p.state).to_string(),
            md.name,
            md.namespace,
            md.attempt.to_string(),
            runtime_handler(p).to_string(),
        ]);
    }
    t.print();
    Ok(())
}

fn verbose(p: &cri::PodSandbox) -> String {
    let mut s = format!("ID: {}\n", p.id);
    if let Some(md) = &p.metadata {
        s.push_str(&super::output::pod_names(md));
        if md.attempt != 0 {
            s.push_str(&format!("Attempt: {}\n", md.attempt));
        }
    }
    s.push_str(&format!("Status: {}\n", state_name(p.state)));
    s.push_str(&format!("Created: {}\n", go_time(p.created_at)));
    s.push_str(&key_values("Labels", &p.labels));
    s.push_str(&key_values("Annotations", &p.annotations));
    s.push_str(&format!("Runtime: {}\n\n", runtime_handler(p)));
    s
}
