//! PullImage: pulls (with the request's `AuthConfig` if any) and answers the image id
//! (config digest), as containerd does.

use crust_daemon::images::{Credentials, Images};
use k8s_cri::v1::{PullImageRequest, PullImageResponse};
use tonic::Status;

use crate::status::{from_error, missing};

pub(super) async fn pull_image(
    images: &std::sync::Arc<Images>,
    req: PullImageRequest,
) -> Result<PullImageResponse, Status> {
    let spec = req
        .image
        .map(|s| s.image)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("image"))?;
    let creds = req.auth.map(|a| Credentials {
        username: a.username,
        password: a.password,
        auth: a.auth,
        identity_token: a.identity_token,
        registry_token: a.registry_token,
    });
    let started = std::time::Instant::now();
    let img = crust_daemon::images::pull_guarded(images, &spec, creds.as_ref())
        .await
        .map_err(from_error)?;
    tracing::info!(image = %spec, id = img.id(), elapsed_ms = started.elapsed().as_millis() as u64, "pulled");
    Ok(PullImageResponse {
        image_ref: img.id().to_string(),
    })
}
