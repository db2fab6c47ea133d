//! End-to-end tests of the image half: real docker-registry, real crustd, CRI client.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crust_e2e::daemon::{count, Crustd};
use crust_e2e::fake::{routes_for, Fake, Reply};
use crust_e2e::image::{self, busybox_layer, Compression, Flavour, Layer};
use crust_e2e::registry::Registry;
use crust_e2e::{cri, require_root};
use k8s_cri::v1::AuthConfig;
use tonic::Code;

mod failures;
mod import;
mod pull;

/// A three-layer image: busybox, then a layer adding files, then one deleting and hiding.
fn layered() -> Vec<Vec<u8>> {
    let l2 = Layer::new()
        .dir("data", 0o755)
        .file("data/keep", b"keep", 0o644)
        .file("data/gone", b"gone", 0o644)
        .dir("data/sub", 0o755)
        .file("data/sub/old", b"old", 0o644)
        .owned_file("data/owned", b"x", 0o4750, 1234, 5678)
        .hardlink("data/keep-link", "data/keep")
        .finish();
    let l3 = Layer::new()
        .dir("data", 0o755)
        .whiteout("data/gone")
        .dir("data/sub", 0o755)
        .opaque("data/sub")
        .file("data/sub/new", b"new", 0o644)
        .finish();
    vec![busybox_layer(), l2, l3]
}

fn store_is_empty(d: &Crustd) {
    let root = d.root();
    assert_eq!(
        count(&root.join("content/blobs/sha256")),
        0,
        "blobs left: {}",
        d.log()
    );
    assert_eq!(count(&root.join("content/ingest")), 0, "ingest left");
    assert_eq!(count(&root.join("snapshots")), 0, "snapshots left");
}
