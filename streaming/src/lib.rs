//! Kubernetes streaming protocols for the CRI streaming server: SPDY/3.1 framing,
//! remotecommand (exec, attach) and portforward over SPDY and WebSocket, a token cache, an
//! HTTP server that serves `/exec/{token}`, `/attach/{token}`, `/portforward/{token}` on top
//! of a [`StreamingBackend`], and the matching client ([`client`]).
//!
//! Wiring in crustd: implement [`StreamingBackend`] over the shim, start a [`Server`], and
//! answer the CRI `Exec`/`Attach`/`PortForward` RPCs with [`Server::get_exec`],
//! [`Server::get_attach`] and [`Server::get_port_forward`].

pub mod backend;
pub mod client;
pub mod portforward;
pub mod protocol;
pub mod remotecommand;
pub mod server;
pub mod spdy;
pub mod status;
pub mod token;

pub use backend::{
    AttachRequest, BackendError, ExecRequest, PortForwardRequest, Stdio, StreamingBackend,
    TerminalSize,
};
pub use server::{Config, RequestError, Server, ServerError};
pub use status::Status;
