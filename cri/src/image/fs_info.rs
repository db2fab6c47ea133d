//! ImageFsInfo: usage of the snapshots directory (bytes and inodes), measured on request.

use std::sync::Arc;

use crust_daemon::images::Images;
use k8s_cri::v1::{
    FilesystemIdentifier, FilesystemUsage, ImageFsInfoRequest, ImageFsInfoResponse, UInt64Value,
};
use tonic::Status;

use crate::status::from_error;

pub(super) async fn image_fs_info(
    images: &Arc<Images>,
    _req: ImageFsInfoRequest,
) -> Result<ImageFsInfoResponse, Status> {
    let imgs = images.clone();
    let u = tokio::task::spawn_blocking(move || imgs.fs_usage())
        .await
        .map_err(|e| Status::internal(format!("image fs usage: {e}")))?
        .map_err(from_error)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let fs = FilesystemUsage {
        timestamp: now,
        fs_id: Some(FilesystemIdentifier {
            mountpoint: u.mountpoint.display().to_string(),
        }),
        used_bytes: Some(UInt64Value {
            value: u.used_bytes,
        }),
        inodes_used: Some(UInt64Value {
            value: u.inodes_used,
        }),
    };
    Ok(ImageFsInfoResponse {
        image_filesystems: vec![fs.clone()],
        container_filesystems: vec![fs],
    })
}
