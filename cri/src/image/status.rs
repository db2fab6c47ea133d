//! ImageStatus: the image, or an empty response when it does not exist (kubelet relies on
//! that, as containerd answers). `verbose` adds `info["info"]`: a JSON object with the
//! image config (`imageSpec`), `chainID`, manifest digest and layers.

use crust_daemon::error::Kind as _;
use crust_daemon::images::Images;
use crust_daemon::ErrorKind;
use k8s_cri::v1::{ImageStatusRequest, ImageStatusResponse};
use tonic::Status;

use super::convert::to_cri;
use crate::status::{from_error, missing};

pub(super) fn image_status(
    images: &Images,
    req: ImageStatusRequest,
) -> Result<ImageStatusResponse, Status> {
    let spec = req
        .image
        .map(|s| s.image)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("image"))?;
    let img = match images.get(&spec) {
        Ok(img) => img,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(ImageStatusResponse::default()),
        Err(e) => return Err(from_error(e)),
    };
    let mut resp = ImageStatusResponse {
        image: Some(to_cri(&img)),
        ..Default::default()
    };
    if req.verbose {
        let config: serde_json::Value = images
            .config_json(&img)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null);
        let info = serde_json::json!({
            "chainID": img.top_chain_id(),
            "imageSpec": config,
            "manifestDigest": img.record.manifest_digest,
            "targetDigest": img.record.target_digest,
            "layers": img.record.layers,
            "snapshotter": "overlayfs",
        });
        resp.info.insert("info".into(), info.to_string());
    }
    Ok(resp)
}
