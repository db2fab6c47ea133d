//! crust-runc: an OCI runtime (runtime-spec 1.x) that is a drop-in for runc.

pub mod rootfs;
pub mod seccomp;
