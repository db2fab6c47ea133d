//! The container root filesystem: mounts, devices, path resolution inside the root, pivot_root, masked and read-only paths.
