//! crust core: content store, images, snapshots, metadata, sandboxes, network, tasks.
