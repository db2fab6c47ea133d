//! crust-runc: an OCI runtime (runtime-spec 1.x) that is a drop-in for runc.
//!
//! The library holds the container machinery; the `crust-runc` binary (src/main.rs and
//! src/commands/) is the runc-compatible command line on top of it.

pub mod config;
pub mod console;
pub mod criu;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod memfd;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spawn;
pub mod state;
pub mod sync;
