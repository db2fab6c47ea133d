//! Version, Status, RuntimeConfig, UpdateRuntimeConfig.

use std::collections::HashMap;

use crust_daemon::runtime::cgroup::CgroupDriver;
use crust_daemon::runtime::Runtime;
use k8s_cri::v1 as cri;
use tonic::Status;

use crate::status::from_error;

/// CRI API version served.
pub const CRI_VERSION: &str = "v1";

pub fn version(_r: cri::VersionRequest) -> cri::VersionResponse {
    cri::VersionResponse {
        version: "0.1.0".into(),
        runtime_name: "crust".into(),
        runtime_version: crate::version::runtime_version(),
        runtime_api_version: CRI_VERSION.into(),
    }
}

pub fn status(rt: &Runtime, r: cri::StatusRequest) -> cri::StatusResponse {
    let runtime = cri::RuntimeCondition {
        r#type: "RuntimeReady".into(),
        status: true,
        reason: String::new(),
        message: String::new(),
    };
    let network = match rt.network().filter(|_| rt.config().network) {
        Some(n) => {
            let s = n.status();
            cri::RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: s.ready,
                reason: s.reason,
                message: s.message,
            }
        }
        None => cri::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: true,
            reason: String::new(),
            message: "pod networking is loopback-only (network disabled in the config)".into(),
        },
    };
    let mut info = HashMap::new();
    if r.verbose {
        let c = rt.config();
        info.insert(
            "config".into(),
            serde_json::json!({
                "root": c.root, "state": c.state, "shim": c.shim.binary, "runtime": c.shim.runtime,
                "cgroupRoot": c.cgroup_root, "network": c.network,
                "pods": rt.pods().len(), "containers": rt.containers().len(),
            })
            .to_string(),
        );
    }
    cri::StatusResponse {
        status: Some(cri::RuntimeStatus {
            conditions: vec![runtime, network],
        }),
        info,
        runtime_handlers: vec![cri::RuntimeHandler {
            name: String::new(),
            features: Some(cri::RuntimeHandlerFeatures {
                recursive_read_only_mounts:
                    crust_daemon::runtime::oci::mounts::recursive_read_only_supported(),
                // userns_options mode POD: one pinned user namespace per pod, idmapped
                // rootfs layers and volumes (runtime::pod::userns).
                user_namespaces: true,
            }),
        }],
        features: Some(cri::RuntimeFeatures {
            supplemental_groups_policy: true,
        }),
    }
}

/// RuntimeConfig: the cgroup driver crustd runs, which kubelet 1.28+ takes as its own
/// (KubeletCgroupDriverFromCRI).
pub fn runtime_config(rt: &Runtime) -> cri::RuntimeConfigResponse {
    let driver = match rt.config().cgroup_driver {
        CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
        CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
    };
    cri::RuntimeConfigResponse {
        linux: Some(cri::LinuxRuntimeConfiguration {
            cgroup_driver: driver as i32,
        }),
    }
}

pub async fn update_runtime_config(
    rt: &Runtime,
    r: cri::UpdateRuntimeConfigRequest,
) -> Result<cri::UpdateRuntimeConfigResponse, Status> {
    let cidr = r
        .runtime_config
        .and_then(|c| c.network_config)
        .map(|n| n.pod_cidr)
        .unwrap_or_default();
    if cidr.is_empty() {
        return Ok(cri::UpdateRuntimeConfigResponse {});
    }
    let first = cidr.split(',').next().unwrap_or_default().trim();
    let net: ipnet::IpNet = first
        .parse()
        .map_err(|_| Status::invalid_argument(format!("pod CIDR {first:?} is not a CIDR")))?;
    if let Some(n) = rt.network() {
        n.set_pod_cidr(Some(net)).await.map_err(from_error)?;
    }
    Ok(cri::UpdateRuntimeConfigResponse {})
}
