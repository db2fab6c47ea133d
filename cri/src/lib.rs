//! CRI v1 front end of crust: the gRPC services `crustd` serves. This crate translates CRI
//! messages to core (`crust-daemon`) calls and back; errors become gRPC statuses in exactly one place, [`status`].
//!
//! Layout: [`image`] is the CRI ImageService (one file per RPC); [`import`] is crust's own
//! small `crust.v1.Images/Import` service on the same socket (the CRI has no import RPC);
//! [`logwriter`] escapes control characters inside crustd's log lines;
//! [`config`] is crustd's TOML configuration; [`lock`] makes crustd's root, state and socket
//! its own; [`observe`] logs every call and feeds [`metrics`]; [`logging`] and [`signals`]
//! serve crustd's main; [`server`] wires the services onto the unix socket. The client side
//! (connecting, the Import messages, [`version`]) is the small crate `crust-client`, which
//! crustctl (crate `crust-ctl`) uses without linking this crate.
//! [`runtime`] is the CRI RuntimeService over `crust_daemon::runtime`, added in
//! [`server::router`]; [`streaming`] is the streaming server behind Exec, Attach and
//! PortForward.

pub mod config;
pub mod image;
pub mod import;
pub mod lock;
pub mod logging;
pub mod logwriter;
pub mod metrics;
pub mod observe;
pub mod runtime;
pub mod server;
pub mod signals;
pub mod status;
pub mod streaming;
pub use crust_client::version;
