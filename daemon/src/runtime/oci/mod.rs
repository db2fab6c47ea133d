//! The OCI runtime spec crust builds for a container: [`spec`] assembles it from the
//! concern modules beside it (user, mounts, devices, resources, capabilities), and
//! [`seccomp`] holds the default seccomp profile. Dependencies run one way: `spec` uses
//! the others, none of them uses `spec`.

pub mod caps;
pub mod devices;
pub mod mounts;
pub mod resources;
pub mod seccomp;
pub mod spec;
pub mod user;
