//! crust-shim: the per-pod containerd shim v2.
//!
//! One shim process per pod (containers grouped by sandbox id) keeps the pod's
//! containers: it drives a runc-compatible runtime ([`runtime`]), reaps every process as
//! child subreaper ([`reaper`]), owns their stdio and CRI log files ([`stdio`],
//! [`crilog`]), watches OOM kills ([`oom`]), publishes task events ([`events`]) and serves
//! containerd's Task API over ttrpc ([`task`], [`daemon`]). [`bootstrap`] holds the shim
//! v2 `start` / `delete` subcommands; [`cli`] ties them together for both binaries.

pub mod args;
pub mod bootstrap;
pub mod cgroup;
pub mod cli;
pub mod crilog;
pub mod daemon;
pub mod error;
pub mod events;
pub mod memory;
pub mod mount;
pub mod oom;
pub mod reaper;
pub mod runtime;
pub mod stdio;
pub mod task;
pub mod tee;

pub use crust_shim_contract::{ATTACH_ANNOTATION, REOPEN_LOG_ANNOTATION};
