//! RemoveImage: a tag removes that name (the image goes with its last tag); an id or digest
//! reference removes the image with all its names. Unknown images succeed, as in containerd.

use crust_daemon::error::Kind as _;
use crust_daemon::images::Images;
use crust_daemon::ErrorKind;
use k8s_cri::v1::{RemoveImageRequest, RemoveImageResponse};
use tonic::Status;

use crate::status::{from_error, missing};

pub(super) async fn remove_image(
    images: &Images,
    req: RemoveImageRequest,
) -> Result<RemoveImageResponse, Status> {
    let spec = req
        .image
        .map(|s| s.image)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("image"))?;
    match images.remove(&spec).await {
        Ok(()) => {
            tracing::info!(image = %spec, "removed");
            Ok(RemoveImageResponse {})
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(RemoveImageResponse {}),
        Err(e) => Err(from_error(e)),
    }
}
