//! `crustctl ps`: lists containers as crictl does (running only unless `-a`, `-s`,
//! `--latest` or `--last`), newest first; `-o json|yaml` prints the
//! ListContainersResponse in crictl's shape, `-v` one block per container.

use k8s_cri::v1 as cri;

use super::output::{age, print_list, short_id, Format, Table};
use super::select::{labels, ListFlags, Pattern};
use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default: running).
    #[arg(long, short = 'a')]
    all: bool,
    /// Filter by container id (or prefix).
    #[arg(long)]
    id: Option<String>,
    /// Filter by pod id.
    #[arg(long, short = 'p')]
    pod: Option<String>,
    /// Filter by container name (regular expression).
    #[arg(long)]
    name: Option<String>,
    /// Filter by image (as the container was created with, or its id).
    #[arg(long)]
    image: Option<String>,
    /// Filter by state (created, running, exited, unknown).
    #[arg(long, short = 's')]
    state: Option<String>,
    /// Filter by label key=value (repeatable).
    #[arg(long)]
    label: Vec<String>,
    /// Show the image's name instead of its id.
    #[arg(long, short = 'r')]
    resolve_image_path: bool,
    #[command(flatten)]
    list: ListFlags,
}

pub fn state_name(s: i32) -> &'static str {
    match cri::ContainerState::try_from(s) {
        Ok(cri::ContainerState::ContainerCreated) => "Created",
        Ok(cri::ContainerState::ContainerRunning) => "Running",
        Ok(cri::ContainerState::ContainerExited) => "Exited",
        _ => "Unknown",
    }
}

/// `sha256:<hex>` shortened as crictl shortens a digest; anything else as it is.
fn short_image(image: &str) -> String {
    match image.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => short_id(hex),
        _ => image.to_string(),
    }
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let keep = a.list.newest();
    let state = match a.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
        _ if keep.is_some() => None,
        None if a.all => None,
        None => Some(cri::ContainerState::ContainerRunning),
        Some("created") => Some(cri::ContainerState::ContainerCreated),
        Some("running") => Some(cri::ContainerState::ContainerRunning),
        Some("exited") => Some(cri::ContainerState::ContainerExited),
        Some("unknown") => Some(cri::ContainerState::ContainerUnknown),
        Some(s) => {
            anyhow::bail!("--state {s:?}: should be one of created, running, exited or unknown")
        }
    };
    let name = Pattern::new("name", a.name.as_deref())?;
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
    cs.retain(|c| name.matches(&c.metadata.clone().unwrap_or_default().name));
    cs.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    if let Some(n) = keep {
        cs.truncate(n);
    }
    if a.list.output != Format::Table {
        return print_list(
            &cri::ListContainersResponse { containers: cs },
            a.list.output,
        );
    }
    let mut images = conn.images().await?;
    let mut image_matches = async |c: &cri::Container| -> anyhow::Result<bool> {
        let Some(want) = a.image.as_deref().filter(|i| !i.is_empty()) else {
            return Ok(true);
        };
        let have = c.image.clone().unwrap_or_default().image;
        if have == want {
            return Ok(true);
        }
        // As crictl: both resolve to the same image.
        let status = |i: &str| cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: i.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        let w = images
            .image_status(status(want))
            .await
            .map_err(super::rpc)?;
        let h = images
            .image_status(status(&have))
            .await
            .map_err(super::rpc)?;
        Ok(match (w.into_inner().image, h.into_inner().image) {
            (Some(w), Some(h)) => w.id == h.id,
            _ => false,
        })
    };
    let mut t = Table::default();
    if !a.list.verbose && !a.list.quiet {
        t.row([
            "CONTAINER",
            "IMAGE",
            "CREATED",
            "STATE",
            "NAME",
            "ATTEMPT",
            "POD ID",
            "POD",
        ]);
    }
    let mut blocks = String::new();
    for c in &cs {
        if !image_matches(c).await? {
            continue;
        }
        if a.list.quiet {
            println!("{}", c.id);
            continue;
        }
        let md = c.metadata.clone().unwrap_or_default();
        let image = c.image.clone().unwrap_or_default().image;
        if a.list.verbose {
            blocks.push_str(&verbose(c, &md, &image));
            continue;
        }
        let (id, pod, mut image) = if a.list.no_trunc {
            (c.id.clone(), c.pod_sandbox_id.clone(), image)
        } else {
            (
                short_id(&c.id),
                short_id(&c.pod_sandbox_id),
                short_image(&image),
            )
        };
        if a.resolve_image_path {
            image = resolve(conn, &image).await?;
        }
        let pod_name = c
            .labels
            .get("io.kubernetes.pod.name")
            .map_or("unknown", String::as_str);
        t.row([
            id,
            image,
            age(c.created_at),
            state_name(c.state).to_string(),
            md.name,
            md.attempt.to_string(),
            pod,
            pod_name.to_string(),
        ]);
    }
    print!("{blocks}");
    if !a.list.quiet {
        t.print();
    }
    Ok(())
}

/// The image's first tag (crictl's `-r`), else its first digest reference.
async fn resolve(conn: &Conn, image: &str) -> anyhow::Result<String> {
    let st = conn
        .images()
        .await?
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .map_err(super::rpc)?
        .into_inner();
    let Some(img) = st.image else {
        anyhow::bail!("no such image {image}");
    };
    Ok(img
        .repo_tags
        .first()
        .or(img.repo_digests.first())
        .cloned()
        .unwrap_or_else(|| image.to_string()))
}

fn verbose(c: &cri::Container, md: &cri::ContainerMetadata, image: &str) -> String {
    let mut s = format!("ID: {}\nPodID: {}\n", c.id, c.pod_sandbox_id);
    if !md.name.is_empty() {
        s.push_str(&format!("Name: {}\n", md.name));
    }
    s.push_str(&format!("Attempt: {}\n", md.attempt));
    s.push_str(&format!("State: {}\n", state_name(c.state)));
    if c.image.is_some() {
        s.push_str(&format!("Image: {image}\n"));
    }
    s.push_str(&format!("Created: {}\n", age(c.created_at)));
    s.push_str(&key_values("Labels", &c.labels));
    s.push_str(&key_values("Annotations", &c.annotations));
    s.push('\n');
    s
}

/// `Labels:` and a sorted `\tkey -> value` line per entry (nothing for an empty map).
pub fn key_values(title: &str, m: &std::collections::HashMap<String, String>) -> String {
    if m.is_empty() {
        return String::new();
    }
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let mut s = format!("{title}:\n");
    for k in keys {
        s.push_str(&format!("\t{k} -> {}\n", m[k]));
    }
    s
}
