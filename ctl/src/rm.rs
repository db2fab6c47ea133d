//! `crustctl rm CONTAINER...` (or `--all`), and the removal loop `rmp` shares: list (for
//! `--all`), stop first with `--force`, remove, print each id.

use k8s_cri::v1 as cri;

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids.
    containers: Vec<String>,
    /// Remove every container.
    #[arg(long, short = 'a')]
    all: bool,
    /// Stop running containers first.
    #[arg(long, short = 'f')]
    force: bool,
}

/// What is removed.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Container,
    Pod,
}

/// Removes `ids` (and every existing one with `all`), stopping each first with `force`.
pub async fn remove(
    conn: &Conn,
    kind: Kind,
    mut ids: Vec<String>,
    all: bool,
    force: bool,
) -> anyhow::Result<()> {
    let mut c = conn.runtime().await?;
    if all {
        ids.extend(match kind {
            Kind::Container => {
                let r = cri::ListContainersRequest::default();
                let l = c.list_containers(r).await.map_err(super::rpc)?;
                l.into_inner()
                    .containers
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            }
            Kind::Pod => {
                let r = cri::ListPodSandboxRequest::default();
                let l = c.list_pod_sandbox(r).await.map_err(super::rpc)?;
                l.into_inner().items.into_iter().map(|p| p.id).collect()
            }
        });
    }
    let what = match kind {
        Kind::Container => "container",
        Kind::Pod => "pod",
    };
    anyhow::ensure!(!ids.is_empty(), "no {what} given");
    for id in ids {
        let (container_id, pod_sandbox_id) = (id.clone(), id.clone());
        match kind {
            Kind::Container => {
                if force {
                    let r = cri::StopContainerRequest {
                        container_id: container_id.clone(),
                        timeout: 0,
                    };
                    c.stop_container(r).await.map_err(super::rpc)?;
                }
                let r = cri::RemoveContainerRequest { container_id };
                c.remove_container(r).await.map_err(super::rpc)?;
                println!("{id}");
            }
            Kind::Pod => {
                if force {
                    let r = cri::StopPodSandboxRequest {
                        pod_sandbox_id: pod_sandbox_id.clone(),
                    };
                    c.stop_pod_sandbox(r).await.map_err(super::rpc)?;
                }
                let r = cri::RemovePodSandboxRequest { pod_sandbox_id };
                c.remove_pod_sandbox(r).await.map_err(super::rpc)?;
                println!("Removed sandbox {id}");
            }
        }
    }
    Ok(())
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    remove(conn, Kind::Container, a.containers, a.all, a.force).await
}
