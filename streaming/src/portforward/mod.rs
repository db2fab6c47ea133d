//! Server side of portforward, kubelet's semantics over SPDY ([`spdy`]) and WebSocket
//! ([`websocket`]). Each forwarded TCP connection is a data stream plus an error stream; the
//! backend copies the data stream to the pod's port, and its failure, if any, is written as
//! text on the error stream (`error forwarding port 80 to pod p: ...`).

pub mod spdy;
pub mod websocket;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::backend::StreamingBackend;

/// Buffer of the pipe between a forwarded stream and the backend.
pub(crate) const PIPE_BUFFER: usize = 64 * 1024;

/// Runs the backend for one forwarded connection; returns the message for the error stream.
pub(crate) async fn forward<B: StreamingBackend>(
    backend: &B,
    pod: &str,
    port: u16,
    pipe: DuplexStream,
) -> Option<String> {
    match backend.port_forward(pod.to_string(), port, pipe).await {
        Ok(()) => None,
        Err(e) => Some(format!("error forwarding port {port} to pod {pod}: {e}")),
    }
}

/// Reads our end of the pipe until the backend closes it.
pub(crate) async fn read_pipe(
    pipe: &mut tokio::io::ReadHalf<DuplexStream>,
    buf: &mut [u8],
) -> Option<usize> {
    match pipe.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// Writes client data into our end of the pipe; false once the backend stopped reading.
pub(crate) async fn write_pipe(pipe: &mut tokio::io::WriteHalf<DuplexStream>, data: &[u8]) -> bool {
    pipe.write_all(data).await.is_ok()
}
