//! The OCI runtime spec crust builds for a container, and its default seccomp profile.

pub mod seccomp;
pub mod spec;
