//! End-to-end tests of the `crust-runc` binary against busybox-static bundles built here.
//! They need root (CI runs as root) and skip with a printed reason otherwise. Every test
//! uses its own state root, bundle and container id, and cleans up in Drop.

mod runtime {
    mod bad_config;
    mod cgroups;
    pub mod common;
    mod create_errors;
    mod devices;
    mod exec;
    mod hooks;
    mod lifecycle;
    mod namespaces;
    mod process;
    mod security;
}
