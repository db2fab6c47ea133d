//! CRI v1 front end of crust: the gRPC services `crustd` serves and the client side
//! `crustctl` uses. This crate translates CRI messages to core (`crust-daemon`) calls and
//! back; errors become gRPC statuses in exactly one place, [`status`].
//!
//! Layout: [`image`] is the CRI ImageService (one file per RPC); [`import`] is crust's own
//! small `crust.v1.Images/Import` service on the same socket (the CRI has no import RPC);
//! [`config`] is crustd's TOML configuration; [`lock`] makes crustd's root, state and socket
//! its own; [`observe`] logs every call and feeds [`metrics`]; [`logging`], [`signals`] and
//! [`version`] serve crustd's main; [`server`] wires the services onto the unix
//! socket; [`client`] connects to a CRI endpoint. crustctl (crate `crust-ctl`, folder `ctl/`) uses [`client`].
//! [`runtime`] is the CRI RuntimeService over `crust_daemon::runtime`, added in
//! [`server::router`]; [`streaming`] is the streaming server behind Exec, Attach and
//! PortForward.

pub mod client;
pub mod config;
pub mod image;
pub mod import;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod runtime;
pub mod server;
pub mod signals;
pub mod status;
pub mod streaming;
pub mod version;
