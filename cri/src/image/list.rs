//! ListImages: every image; with `filter.image.image` set, only the image it resolves to
//! (by name, id or id prefix), none if it resolves to nothing.

use crust_daemon::images::Images;
use crust_daemon::ErrorKind;
use k8s_cri::v1::{ListImagesRequest, ListImagesResponse};
use tonic::Status;

use super::convert::to_cri;
use crate::status::from_error;

pub(super) fn list_images(
    images: &Images,
    req: ListImagesRequest,
) -> Result<ListImagesResponse, Status> {
    let filter = req
        .filter
        .and_then(|f| f.image)
        .map(|s| s.image)
        .filter(|s| !s.is_empty());
    let list = match filter {
        None => images.list().map_err(from_error)?,
        Some(spec) => match images.get(&spec) {
            Ok(img) => vec![img],
            Err(e) if crust_daemon::error::Kind::kind(&e) == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(from_error(e)),
        },
    };
    Ok(ListImagesResponse {
        images: list.iter().map(to_cri).collect(),
    })
}
