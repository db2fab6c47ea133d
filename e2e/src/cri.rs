//! The CRI client, as kubelet uses it: ImageService over the unix socket.

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::{
    AuthConfig, Image, ImageSpec, ImageStatusRequest, ImageStatusResponse, ListImagesRequest,
    PullImageRequest, RemoveImageRequest,
};
use tonic::transport::Channel;

/// Connects to a socket.
pub async fn connect(socket: &Path) -> Channel {
    crust_client::connect(
        &format!("unix://{}", socket.display()),
        Duration::from_secs(10),
    )
    .await
    .expect("connect to crustd")
}

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

/// Thin kubelet-like wrapper.
#[derive(Clone)]
pub struct Images(pub ImageServiceClient<Channel>);

impl Images {
    /// Over `ch`.
    pub fn new(ch: Channel) -> Self {
        Self(ImageServiceClient::new(ch))
    }

    /// PullImage; the image ref on success.
    pub async fn pull(
        &mut self,
        image: &str,
        auth: Option<AuthConfig>,
    ) -> Result<String, tonic::Status> {
        let r = self
            .0
            .pull_image(PullImageRequest {
                image: spec(image),
                auth,
                sandbox_config: None,
            })
            .await?;
        Ok(r.into_inner().image_ref)
    }

    /// ImageStatus.
    pub async fn status(&mut self, image: &str, verbose: bool) -> ImageStatusResponse {
        self.0
            .image_status(ImageStatusRequest {
                image: spec(image),
                verbose,
            })
            .await
            .expect("ImageStatus")
            .into_inner()
    }

    /// ListImages.
    pub async fn list(&mut self, filter: Option<&str>) -> Vec<Image> {
        let filter = filter.map(|f| k8s_cri::v1::ImageFilter { image: spec(f) });
        self.0
            .list_images(ListImagesRequest { filter })
            .await
            .expect("ListImages")
            .into_inner()
            .images
    }

    /// RemoveImage.
    pub async fn remove(&mut self, image: &str) -> Result<(), tonic::Status> {
        self.0
            .remove_image(RemoveImageRequest { image: spec(image) })
            .await
            .map(|_| ())
    }
}
