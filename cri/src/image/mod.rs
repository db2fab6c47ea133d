//! The CRI ImageService, answering as containerd's CRI plugin answers kubelet and crictl.
//! One file per RPC; [`convert`] turns core images into CRI messages.

mod convert;
mod fs_info;
mod list;
mod pull;
mod remove;
mod status;

use std::sync::Arc;

use crust_daemon::images::Images;
use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::{
    ImageFsInfoRequest, ImageFsInfoResponse, ImageStatusRequest, ImageStatusResponse,
    ListImagesRequest, ListImagesResponse, PullImageRequest, PullImageResponse, RemoveImageRequest,
    RemoveImageResponse,
};
use tonic::{Request, Response, Status};

/// The ImageService over the core image store.
#[derive(Debug, Clone)]
pub struct ImageServer {
    images: Arc<Images>,
}

impl ImageServer {
    /// Serves `images`.
    pub fn new(images: Arc<Images>) -> Self {
        Self { images }
    }
}

#[tonic::async_trait]
impl ImageService for ImageServer {
    async fn list_images(
        &self,
        r: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        list::list_images(&self.images, r.into_inner()).map(Response::new)
    }

    async fn image_status(
        &self,
        r: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        status::image_status(&self.images, r.into_inner()).map(Response::new)
    }

    async fn pull_image(
        &self,
        r: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        pull::pull_image(&self.images, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_image(
        &self,
        r: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        remove::remove_image(&self.images, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn image_fs_info(
        &self,
        r: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        fs_info::image_fs_info(&self.images, r.into_inner())
            .await
            .map(Response::new)
    }
}
