//! Port-forward (the CRI `PortForward` behind crustd's streaming server): one caller
//! stream copied both ways to `127.0.0.1:<port>` inside a pod's network namespace.
//!
//! The TCP socket is created on a short-lived thread that joined the pod's network
//! namespace ([`crate::network::netns::run_in`]); a socket stays in the namespace it was
//! created in, so it is then connected (non-blocking) and used from tokio on the host like
//! any other. A pod with the host network connects on the host's loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::types::PodState;
use crate::runtime::Runtime;

/// How long the pod side may keep answering after the client's side has ended.
const HALF_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long connecting to the pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Runtime {
    /// Copies between `stream` and port `port` of pod `pod_id`: the client's EOF is passed
    /// on as a half-close; the pod's side closing ends the forward.
    pub async fn port_forward<S>(&self, pod_id: &str, port: u16, stream: S) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let pod = self.pod(pod_id)?;
        if pod.state != PodState::Ready {
            return Err(RuntimeError::WrongState {
                what: "pod sandbox",
                id: pod.id,
                state: "not ready".into(),
                op: "port-forward to",
            });
        }
        if port == 0 {
            return Err(RuntimeError::Invalid(format!(
                "port-forward to pod {}: port 0",
                pod.id
            )));
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let err = |source| RuntimeError::PortForward {
            pod: pod.id.clone(),
            port,
            source,
        };
        // Only the socket(2) call needs the pod's namespace: it is quick, so it runs on
        // run_in's short-lived thread, and the connect is a non-blocking one on tokio.
        let socket = match &pod.netns {
            Some(ns) => crate::network::netns::run_in(ns, TcpSocket::new_v4)
                .await
                .map_err(|source| RuntimeError::Network {
                    pod: pod.id.clone(),
                    source: Box::new(source),
                })?
                .map_err(err)?,
            None => TcpSocket::new_v4().map_err(err)?,
        };
        let _ = socket.set_nodelay(true);
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr)).await {
            Ok(r) => r.map_err(err)?,
            Err(_) => return Err(err(std::io::ErrorKind::TimedOut.into())),
        };
        let (mut pod_r, mut pod_w) = tcp.into_split();
        let (mut client_r, mut client_w) = tokio::io::split(stream);
        // Client → pod; the client's EOF becomes a half-close towards the pod.
        let up = async {
            let r = tokio::io::copy(&mut client_r, &mut pod_w).await;
            let _ = pod_w.shutdown().await;
            r
        };
        // Pod → client; when the pod closes, the forward is over (as containerd's).
        let down = async {
            let r = tokio::io::copy(&mut pod_r, &mut client_w).await;
            let _ = client_w.shutdown().await;
            r
        };
        tokio::pin!(down);
        let r = tokio::select! {
            r = &mut down => r,
            // A client that went away looks the same as one that half-closed: give the pod
            // side a short while to finish its answer (as containerd does), so a server that
            // never writes or closes cannot hold the session and its connection forever.
            r = up => match r {
                Ok(_) => match tokio::time::timeout(HALF_CLOSE_GRACE, &mut down).await {
                    Ok(r) => r,
                    Err(_) => Ok(0),
                },
                Err(e) => Err(e),
            },
        };
        match r {
            Ok(_) => Ok(()),
            // The client or the server in the pod reset the connection: the session is over.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(err(e)),
        }
    }
}
