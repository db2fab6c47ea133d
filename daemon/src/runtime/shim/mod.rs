//! The client side of crust-shim: launching a pod's shim (at RunPodSandbox, see
//! [`launch()`]) and calling its Task API over ttrpc.
//!
//! One shim per pod, at the address [`address_for`] derives from the pod id (the same
//! one crust-shim's own `start` bootstrap derives from the bundles'
//! `io.kubernetes.cri.sandbox-id` annotation). Shim sockets live under
//! `<state>/shims/s/` (never abstract). A shim with no containers lives until it is
//! told to shut down; it exits by itself when its last container is deleted. Events are not forwarded: exits are learnt
//! through `Wait`, which also works after a reconnect (it answers at once for a process
//! that exited while nobody was connected). A shim's own death is learnt through a pidfd
//! ([`watch`]).

mod client;
mod launch;
mod pspawn;
pub mod watch;

pub use client::{Exit, Shim};
pub use launch::{address_for, delete_without_shim, launch, ShimConfig, NAMESPACE};
