//! The client side of crustd's socket, small enough for a CLI: [`endpoint`] connects to a CRI
//! endpoint (`unix:///path`, a bare socket path, or `tcp://host:port`), and [`import`] is
//! crust's own `crust.v1.Images/Import` RPC (the CRI has no import call): its messages and
//! path, which the server in `crust-cri` serves, and the client call `crustctl` makes;
//! [`version`] is the version and git commit crustd and crustctl both report.
//!
//! This crate links neither the core (`crust-daemon`) nor the CRI server, so a client such as
//! `crustctl` speaks CRI over the socket and never opens crust's stores itself.

pub mod endpoint;
pub mod import;
pub mod version;

pub use endpoint::{connect, Error, DEFAULT_SOCKET};
