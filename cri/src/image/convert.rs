//! Core image → CRI `Image`, as containerd's `toCRIImage`: id is the config digest, the
//! image user becomes `uid` when numeric and `username` otherwise.

use crust_daemon::images::Image;
use k8s_cri::v1 as cri;

/// The CRI form of an image.
pub fn to_cri(img: &Image) -> cri::Image {
    let user = img
        .record
        .config
        .user
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();
    let (uid, username) = match user.parse::<i64>() {
        Ok(n) => (Some(cri::Int64Value { value: n }), String::new()),
        Err(_) => (None, user),
    };
    cri::Image {
        id: img.id().to_string(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        size: img.record.size,
        uid,
        username,
        spec: Some(cri::ImageSpec {
            image: img.id().to_string(),
            ..Default::default()
        }),
        pinned: false,
    }
}
