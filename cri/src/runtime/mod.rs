//! The CRI RuntimeService over the core runtime, answering as containerd's CRI plugin
//! answers kubelet. Grouped by object: [`pod`] (sandbox RPCs), [`container`]
//! (container RPCs), [`exec`] (ExecSync and the streaming RPCs), [`stats`], [`metrics`], [`info`]
//! (Version, Status, RuntimeConfig, UpdateRuntimeConfig), [`events`]
//! (GetContainerEvents); [`convert`] maps messages. Errors go through [`crate::status`].

mod container;
pub mod convert;
mod events;
mod exec;
mod info;
mod metrics;
mod pod;
mod stats;

use std::pin::Pin;
use std::sync::Arc;

use crust_daemon::images::Images;
use crust_daemon::runtime::Runtime;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

use crate::server::Closing;
use crate::streaming::StreamingServer;

/// The RuntimeService.
#[derive(Clone)]
pub struct RuntimeServer {
    rt: Arc<Runtime>,
    images: Arc<Images>,
    streaming: Option<StreamingServer>,
    closing: Closing,
}

impl RuntimeServer {
    /// Serves `rt`; `streaming` hands out the URLs of Exec, Attach and PortForward (without
    /// it they answer Unavailable); event streams end when `closing` says so.
    pub fn new(
        rt: Arc<Runtime>,
        images: Arc<Images>,
        streaming: Option<StreamingServer>,
        closing: Closing,
    ) -> Self {
        Self {
            rt,
            images,
            streaming,
            closing,
        }
    }
}

type R<T> = Result<Response<T>, Status>;

fn ok<T>(v: T) -> R<T> {
    Ok(Response::new(v))
}

#[tonic::async_trait]
impl RuntimeService for RuntimeServer {
    async fn version(&self, r: Request<cri::VersionRequest>) -> R<cri::VersionResponse> {
        ok(info::version(r.into_inner()))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<cri::RunPodSandboxRequest>,
    ) -> R<cri::RunPodSandboxResponse> {
        ok(pod::run(&self.rt, r.into_inner()).await?)
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<cri::StopPodSandboxRequest>,
    ) -> R<cri::StopPodSandboxResponse> {
        ok(pod::stop(&self.rt, r.into_inner()).await?)
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<cri::RemovePodSandboxRequest>,
    ) -> R<cri::RemovePodSandboxResponse> {
        ok(pod::remove(&self.rt, r.into_inner()).await?)
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<cri::PodSandboxStatusRequest>,
    ) -> R<cri::PodSandboxStatusResponse> {
        ok(pod::status(&self.rt, r.into_inner())?)
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<cri::ListPodSandboxRequest>,
    ) -> R<cri::ListPodSandboxResponse> {
        ok(pod::list(&self.rt, r.into_inner()))
    }

    async fn create_container(
        &self,
        r: Request<cri::CreateContainerRequest>,
    ) -> R<cri::CreateContainerResponse> {
        ok(container::create(&self.rt, r.into_inner()).await?)
    }

    async fn start_container(
        &self,
        r: Request<cri::StartContainerRequest>,
    ) -> R<cri::StartContainerResponse> {
        ok(container::start(&self.rt, r.into_inner()).await?)
    }

    async fn stop_container(
        &self,
        r: Request<cri::StopContainerRequest>,
    ) -> R<cri::StopContainerResponse> {
        ok(container::stop(&self.rt, r.into_inner()).await?)
    }

    async fn remove_container(
        &self,
        r: Request<cri::RemoveContainerRequest>,
    ) -> R<cri::RemoveContainerResponse> {
        ok(container::remove(&self.rt, r.into_inner()).await?)
    }

    async fn list_containers(
        &self,
        r: Request<cri::ListContainersRequest>,
    ) -> R<cri::ListContainersResponse> {
        ok(container::list(&self.rt, r.into_inner()))
    }

    async fn container_status(
        &self,
        r: Request<cri::ContainerStatusRequest>,
    ) -> R<cri::ContainerStatusResponse> {
        ok(container::status(&self.rt, r.into_inner())?)
    }

    async fn update_container_resources(
        &self,
        r: Request<cri::UpdateContainerResourcesRequest>,
    ) -> R<cri::UpdateContainerResourcesResponse> {
        ok(container::update(&self.rt, r.into_inner()).await?)
    }

    async fn reopen_container_log(
        &self,
        r: Request<cri::ReopenContainerLogRequest>,
    ) -> R<cri::ReopenContainerLogResponse> {
        ok(container::reopen_log(&self.rt, r.into_inner()).await?)
    }

    async fn exec_sync(&self, r: Request<cri::ExecSyncRequest>) -> R<cri::ExecSyncResponse> {
        ok(exec::exec_sync(&self.rt, r.into_inner()).await?)
    }

    async fn exec(&self, r: Request<cri::ExecRequest>) -> R<cri::ExecResponse> {
        ok(exec::exec(
            &self.rt,
            self.streaming.as_ref(),
            r.into_inner(),
        )?)
    }

    async fn attach(&self, r: Request<cri::AttachRequest>) -> R<cri::AttachResponse> {
        ok(exec::attach(
            &self.rt,
            self.streaming.as_ref(),
            r.into_inner(),
        )?)
    }

    async fn port_forward(
        &self,
        r: Request<cri::PortForwardRequest>,
    ) -> R<cri::PortForwardResponse> {
        ok(exec::port_forward(
            &self.rt,
            self.streaming.as_ref(),
            r.into_inner(),
        )?)
    }

    async fn container_stats(
        &self,
        r: Request<cri::ContainerStatsRequest>,
    ) -> R<cri::ContainerStatsResponse> {
        ok(stats::container(&self.rt, &self.images, r.into_inner()).await?)
    }

    async fn list_container_stats(
        &self,
        r: Request<cri::ListContainerStatsRequest>,
    ) -> R<cri::ListContainerStatsResponse> {
        ok(stats::list_containers(&self.rt, &self.images, r.into_inner()).await?)
    }

    async fn pod_sandbox_stats(
        &self,
        r: Request<cri::PodSandboxStatsRequest>,
    ) -> R<cri::PodSandboxStatsResponse> {
        ok(stats::pod(&self.rt, &self.images, r.into_inner()).await?)
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<cri::ListPodSandboxStatsRequest>,
    ) -> R<cri::ListPodSandboxStatsResponse> {
        ok(stats::list_pods(&self.rt, &self.images, r.into_inner()).await?)
    }

    async fn update_runtime_config(
        &self,
        r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> R<cri::UpdateRuntimeConfigResponse> {
        ok(info::update_runtime_config(&self.rt, r.into_inner()).await?)
    }

    async fn status(&self, r: Request<cri::StatusRequest>) -> R<cri::StatusResponse> {
        ok(info::status(&self.rt, r.into_inner()))
    }

    async fn checkpoint_container(
        &self,
        r: Request<cri::CheckpointContainerRequest>,
    ) -> R<cri::CheckpointContainerResponse> {
        ok(container::checkpoint(&self.rt, r.into_inner()).await?)
    }

    type GetContainerEventsStream =
        Pin<Box<dyn futures::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

    async fn get_container_events(
        &self,
        _r: Request<cri::GetEventsRequest>,
    ) -> R<Self::GetContainerEventsStream> {
        ok(events::stream(self.rt.clone(), self.closing.clone()))
    }

    async fn list_metric_descriptors(
        &self,
        _r: Request<cri::ListMetricDescriptorsRequest>,
    ) -> R<cri::ListMetricDescriptorsResponse> {
        ok(metrics::descriptors())
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _r: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> R<cri::ListPodSandboxMetricsResponse> {
        ok(metrics::list(&self.rt, stats::mountpoint(&self.images)).await?)
    }

    async fn runtime_config(
        &self,
        _r: Request<cri::RuntimeConfigRequest>,
    ) -> R<cri::RuntimeConfigResponse> {
        ok(info::runtime_config(&self.rt))
    }
}
