//! The objects a CRI request names (pod, container, image), for the log line of a failed
//! call. Decoded from the request's first gRPC message with the CRI's own prost types, only
//! when a call failed: successful calls pay nothing but keeping the request's bytes.

use k8s_cri::v1 as cri;
use prost::Message;

/// The ids a request names; unset ones are left out of the log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ids {
    /// Pod sandbox id.
    pub pod: Option<String>,
    /// Pod as `namespace/name` (RunPodSandbox, before it has an id).
    pub pod_name: Option<String>,
    /// Container id.
    pub container: Option<String>,
    /// Container name (CreateContainer, before it has an id).
    pub container_name: Option<String>,
    /// Image reference.
    pub image: Option<String>,
    /// Archive path (crust.v1.Images/Import).
    pub path: Option<String>,
}

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The first message of a gRPC request body (5-byte prefix: compressed flag, big-endian
/// length); None if it is compressed or incomplete.
pub fn first_message(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    if flag != 0 || rest.len() < 4 {
        return None;
    }
    let (len, msg) = rest.split_at(4);
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    msg.get(..len)
}

/// The ids in request `msg` of `method` (the method name alone, e.g. `StopPodSandbox`).
pub fn extract(method: &str, msg: &[u8]) -> Ids {
    decode(method, msg).unwrap_or_default()
}

fn pod(id: String) -> Ids {
    Ids {
        pod: some(id),
        ..Default::default()
    }
}

fn container(id: String) -> Ids {
    Ids {
        container: some(id),
        ..Default::default()
    }
}

fn image(spec: Option<cri::ImageSpec>) -> Ids {
    Ids {
        image: spec.and_then(|s| some(s.image)),
        ..Default::default()
    }
}

fn decode(method: &str, m: &[u8]) -> Option<Ids> {
    Some(match method {
        "RunPodSandbox" => {
            let r = cri::RunPodSandboxRequest::decode(m).ok()?;
            Ids {
                pod_name: r
                    .config
                    .and_then(|c| c.metadata)
                    .map(|md| format!("{}/{}", md.namespace, md.name)),
                ..Default::default()
            }
        }
        "StopPodSandbox" => pod(cri::StopPodSandboxRequest::decode(m).ok()?.pod_sandbox_id),
        "RemovePodSandbox" => pod(cri::RemovePodSandboxRequest::decode(m).ok()?.pod_sandbox_id),
        "PodSandboxStatus" => pod(cri::PodSandboxStatusRequest::decode(m).ok()?.pod_sandbox_id),
        "PodSandboxStats" => pod(cri::PodSandboxStatsRequest::decode(m).ok()?.pod_sandbox_id),
        "PortForward" => pod(cri::PortForwardRequest::decode(m).ok()?.pod_sandbox_id),
        "CreateContainer" => {
            let r = cri::CreateContainerRequest::decode(m).ok()?;
            let c = r.config.unwrap_or_default();
            Ids {
                pod: some(r.pod_sandbox_id),
                container_name: c.metadata.and_then(|md| some(md.name)),
                image: c.image.and_then(|i| some(i.image)),
                ..Default::default()
            }
        }
        "StartContainer" => container(cri::StartContainerRequest::decode(m).ok()?.container_id),
        "StopContainer" => container(cri::StopContainerRequest::decode(m).ok()?.container_id),
        "RemoveContainer" => container(cri::RemoveContainerRequest::decode(m).ok()?.container_id),
        "ContainerStatus" => container(cri::ContainerStatusRequest::decode(m).ok()?.container_id),
        "ContainerStats" => container(cri::ContainerStatsRequest::decode(m).ok()?.container_id),
        "UpdateContainerResources" => container(
            cri::UpdateContainerResourcesRequest::decode(m)
                .ok()?
                .container_id,
        ),
        "ReopenContainerLog" => {
            container(cri::ReopenContainerLogRequest::decode(m).ok()?.container_id)
        }
        "ExecSync" => container(cri::ExecSyncRequest::decode(m).ok()?.container_id),
        "Exec" => container(cri::ExecRequest::decode(m).ok()?.container_id),
        "Attach" => container(cri::AttachRequest::decode(m).ok()?.container_id),
        "CheckpointContainer" => container(
            cri::CheckpointContainerRequest::decode(m)
                .ok()?
                .container_id,
        ),
        "PullImage" => image(cri::PullImageRequest::decode(m).ok()?.image),
        "ImageStatus" => image(cri::ImageStatusRequest::decode(m).ok()?.image),
        "RemoveImage" => image(cri::RemoveImageRequest::decode(m).ok()?.image),
        "Import" => Ids {
            path: some(crate::import::ImportRequest::decode(m).ok()?.path),
            ..Default::default()
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(m: &impl Message) -> Vec<u8> {
        let b = m.encode_to_vec();
        let mut v = vec![0];
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(&b);
        v
    }

    #[test]
    fn ids_of_pod_container_and_image_requests() {
        let b = framed(&cri::StopPodSandboxRequest {
            pod_sandbox_id: "p1".into(),
        });
        assert_eq!(
            extract("StopPodSandbox", first_message(&b).unwrap()).pod,
            Some("p1".into())
        );
        let b = framed(&cri::CreateContainerRequest {
            pod_sandbox_id: "p2".into(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "web".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: "busybox".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sandbox_config: None,
        });
        let ids = extract("CreateContainer", first_message(&b).unwrap());
        assert_eq!(ids.pod.as_deref(), Some("p2"));
        assert_eq!(ids.container_name.as_deref(), Some("web"));
        assert_eq!(ids.image.as_deref(), Some("busybox"));
        let b = framed(&cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: "r/x:1".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            extract("PullImage", first_message(&b).unwrap()).image,
            Some("r/x:1".into())
        );
    }

    #[test]
    fn garbage_unknown_compressed_or_short_bodies_give_nothing() {
        assert_eq!(extract("StopPodSandbox", &[0xff, 0xff]), Ids::default());
        assert_eq!(extract("Version", &[]), Ids::default());
        assert_eq!(first_message(&[1, 0, 0, 0, 0]), None);
        assert_eq!(first_message(&[0, 0, 0, 0, 9, 1]), None);
        assert_eq!(first_message(&[0, 0, 0, 0, 1, 7]), Some(&[7u8][..]));
    }
}
