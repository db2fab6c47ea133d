//! The client side of crust-shim: launching a pod's shim (at RunPodSandbox, see
//! [`launch()`]) and calling its Task API over ttrpc.
//!
//! One shim per pod, at the address [`address_for`] derives from the pod id (the same
//! one crust-shim's own `start` bootstrap derives from the bundles'
//! `io.kubernetes.cri.sandbox-id` annotation). Shim sockets live under
//! `<state>/shims/s/` (never abstract). A shim with no containers lives until it is
//! told to shut down; it exits by itself when its last container is deleted. Exits are learnt
//! through `Wait`, which also works after a reconnect (it answers at once for a process
//! that exited while nobody was connected); of the task events the shims forward to
//! crustd ([`events`]) only OOM kills are used. A shim's own death is learnt through a
//! pidfd ([`watch`]).

mod client;
pub(crate) mod events;
mod launch;
mod pspawn;
pub mod watch;

pub use client::{Exit, Shim};
pub use launch::{address_for, delete_without_shim, launch, ShimConfig, NAMESPACE};
