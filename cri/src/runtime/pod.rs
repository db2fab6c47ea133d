//! RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox.

use std::collections::HashMap;

use crust_daemon::runtime::Runtime;
use k8s_cri::v1 as cri;
use tonic::Status;

use super::convert;
use crate::status::{from_error, missing};

pub async fn run(
    rt: &Runtime,
    r: cri::RunPodSandboxRequest,
) -> Result<cri::RunPodSandboxResponse, Status> {
    let cfg = r.config.ok_or_else(|| missing("config"))?;
    let spec = convert::pod_spec(cfg, r.runtime_handler)?;
    let id = rt.run_pod(spec).await.map_err(from_error)?;
    Ok(cri::RunPodSandboxResponse { pod_sandbox_id: id })
}

pub async fn stop(
    rt: &Runtime,
    r: cri::StopPodSandboxRequest,
) -> Result<cri::StopPodSandboxResponse, Status> {
    if r.pod_sandbox_id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    rt.stop_pod(&r.pod_sandbox_id).await.map_err(from_error)?;
    Ok(cri::StopPodSandboxResponse {})
}

pub async fn remove(
    rt: &Runtime,
    r: cri::RemovePodSandboxRequest,
) -> Result<cri::RemovePodSandboxResponse, Status> {
    if r.pod_sandbox_id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    rt.remove_pod(&r.pod_sandbox_id).await.map_err(from_error)?;
    Ok(cri::RemovePodSandboxResponse {})
}

pub fn status(
    rt: &Runtime,
    r: cri::PodSandboxStatusRequest,
) -> Result<cri::PodSandboxStatusResponse, Status> {
    let p = rt.pod(&r.pod_sandbox_id).map_err(from_error)?;
    let mut info = HashMap::new();
    if r.verbose {
        let v = serde_json::json!({
            "pid": 0,
            "runtimeHandler": p.spec.runtime_handler,
            "netNamespacePath": p.netns,
            "ipcNamespacePath": p.ipcns,
            "utsNamespacePath": p.utsns,
            "userNamespacePath": p.userns,
            "cgroupParent": p.cgroup_parent,
            "shimAddress": p.shim_address,
            "podDir": p.dir,
            "config": p.spec,
        });
        info.insert("info".to_string(), v.to_string());
    }
    let containers_statuses = rt
        .pod_containers(&p.id)
        .iter()
        .map(convert::container_status)
        .collect();
    Ok(cri::PodSandboxStatusResponse {
        status: Some(convert::pod_status(&p)),
        info,
        containers_statuses,
        timestamp: crust_daemon::runtime::now(),
    })
}

pub fn list(rt: &Runtime, r: cri::ListPodSandboxRequest) -> cri::ListPodSandboxResponse {
    let f = r.filter.unwrap_or_default();
    let items = rt
        .pods()
        .into_iter()
        .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
        .filter(|p| {
            f.state
                .as_ref()
                .is_none_or(|s| s.state == convert::pod_state(p))
        })
        .filter(|p| convert::matches(&p.spec.labels, &f.label_selector))
        .map(|p| convert::pod(&p))
        .collect();
    cri::ListPodSandboxResponse { items }
}
