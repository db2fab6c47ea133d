//! SPDY/3.1 as Kubernetes uses it (moby/spdystream): frames, header compression and a
//! connection multiplexing streams over one byte stream.
//!
//! Written by hand because no maintained Rust crate speaks SPDY/3.1. [`frame`] is the pure
//! wire codec, [`headers`] the name/value blocks and their zlib contexts, [`conn`] the
//! multiplexer with its stream handles.

pub mod conn;
pub mod dictionary;
pub mod frame;
pub mod headers;

pub use conn::{
    Connection, ConnectionError, Incoming, IncomingStream, Role, Stream, StreamReader, StreamWriter,
};
pub use frame::{Frame, FrameCodec, FrameError};
pub use headers::Headers;
