//! CreateContainer, StartContainer, StopContainer, RemoveContainer, ListContainers,
//! ContainerStatus, UpdateContainerResources, ReopenContainerLog, CheckpointContainer.

use std::collections::HashMap;

use crust_daemon::runtime::Runtime;
use k8s_cri::v1 as cri;
use tonic::Status;

use super::convert;
use crate::status::{from_error, missing};

pub async fn create(
    rt: &Runtime,
    r: cri::CreateContainerRequest,
) -> Result<cri::CreateContainerResponse, Status> {
    if r.pod_sandbox_id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    let cfg = r.config.ok_or_else(|| missing("config"))?;
    let spec = convert::container_spec(cfg)?;
    let id = rt
        .create_container(&r.pod_sandbox_id, spec)
        .await
        .map_err(from_error)?;
    Ok(cri::CreateContainerResponse { container_id: id })
}

/// CheckpointContainer: the archive at `location`; the container keeps running.
pub async fn checkpoint(
    rt: &Runtime,
    r: cri::CheckpointContainerRequest,
) -> Result<cri::CheckpointContainerResponse, Status> {
    if r.container_id.is_empty() {
        return Err(missing("container_id"));
    }
    if r.location.is_empty() {
        return Err(missing("location"));
    }
    rt.checkpoint_container(&r.container_id, &r.location, r.timeout)
        .await
        .map_err(from_error)?;
    Ok(cri::CheckpointContainerResponse {})
}

pub async fn start(
    rt: &std::sync::Arc<Runtime>,
    r: cri::StartContainerRequest,
) -> Result<cri::StartContainerResponse, Status> {
    rt.start_container(&r.container_id)
        .await
        .map_err(from_error)?;
    Ok(cri::StartContainerResponse {})
}

pub async fn stop(
    rt: &Runtime,
    r: cri::StopContainerRequest,
) -> Result<cri::StopContainerResponse, Status> {
    // An unknown id is success (idempotent stop); an empty one is a malformed request.
    if r.container_id.is_empty() {
        return Err(missing("container_id"));
    }
    rt.stop_container(&r.container_id, r.timeout)
        .await
        .map_err(from_error)?;
    Ok(cri::StopContainerResponse {})
}

pub async fn remove(
    rt: &Runtime,
    r: cri::RemoveContainerRequest,
) -> Result<cri::RemoveContainerResponse, Status> {
    if r.container_id.is_empty() {
        return Err(missing("container_id"));
    }
    rt.remove_container(&r.container_id)
        .await
        .map_err(from_error)?;
    Ok(cri::RemoveContainerResponse {})
}

pub fn list(rt: &Runtime, r: cri::ListContainersRequest) -> cri::ListContainersResponse {
    let f = r.filter.unwrap_or_default();
    let containers = rt
        .containers()
        .into_iter()
        .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
        .filter(|c| f.pod_sandbox_id.is_empty() || c.pod_id.starts_with(&f.pod_sandbox_id))
        .filter(|c| {
            f.state
                .as_ref()
                .is_none_or(|s| s.state == convert::container_state(c))
        })
        .filter(|c| convert::matches(&c.spec.labels, &f.label_selector))
        .map(|c| convert::container(&c))
        .collect();
    cri::ListContainersResponse { containers }
}

pub fn status(
    rt: &Runtime,
    r: cri::ContainerStatusRequest,
) -> Result<cri::ContainerStatusResponse, Status> {
    let c = rt.container(&r.container_id).map_err(from_error)?;
    let mut info = HashMap::new();
    if r.verbose {
        let spec = std::fs::read_to_string(c.bundle.join("config.json")).unwrap_or_default();
        let v = serde_json::json!({
            "sandboxID": c.pod_id,
            "pid": c.pid,
            "snapshotKey": c.snapshot,
            "snapshotter": "overlayfs",
            "runtimeType": "io.containerd.crust.v2",
            "config": c.spec,
            "runtimeSpec": serde_json::from_str::<serde_json::Value>(&spec).unwrap_or_default(),
        });
        info.insert("info".to_string(), v.to_string());
    }
    Ok(cri::ContainerStatusResponse {
        status: Some(convert::container_status(&c)),
        info,
    })
}

pub async fn update(
    rt: &Runtime,
    r: cri::UpdateContainerResourcesRequest,
) -> Result<cri::UpdateContainerResourcesResponse, Status> {
    let res = convert::resources(r.linux.as_ref());
    rt.update_resources(&r.container_id, res)
        .await
        .map_err(from_error)?;
    Ok(cri::UpdateContainerResourcesResponse {})
}

pub async fn reopen_log(
    rt: &Runtime,
    r: cri::ReopenContainerLogRequest,
) -> Result<cri::ReopenContainerLogResponse, Status> {
    rt.reopen_log(&r.container_id).await.map_err(from_error)?;
    Ok(cri::ReopenContainerLogResponse {})
}
