//! Connecting to a CRI endpoint: `unix:///path`, a bare absolute socket path, or
//! `tcp://host:port`.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// crustd's socket when nothing else is configured.
pub const DEFAULT_SOCKET: &str = "/run/crust/crust.sock";

/// Connection failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint string is not understood.
    #[error("invalid endpoint {0:?}: expected unix:///path or tcp://host:port")]
    Endpoint(String),
    /// Connecting failed.
    #[error("connect to {endpoint}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Cause.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Connects to `endpoint` (waits at most `timeout` for the connection).
pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Channel, Error> {
    let conn_err = |source| Error::Connect {
        endpoint: endpoint.to_string(),
        source,
    };
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        return Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|_| Error::Endpoint(endpoint.into()))?
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(conn_err);
    }
    let path = PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
    if !path.is_absolute() {
        return Err(Error::Endpoint(endpoint.into()));
    }
    Endpoint::from_static("http://localhost")
        .connect_timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .map_err(conn_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relative_paths_and_unknown_schemes_are_refused() {
        for bad in ["run/crust.sock", "unix://run/crust.sock", "http://x:1"] {
            let e = connect(bad, Duration::from_millis(100)).await;
            assert!(matches!(e, Err(Error::Endpoint(_))), "{bad}: {e:?}");
        }
    }

    #[tokio::test]
    async fn a_missing_socket_is_a_connect_error_naming_it() {
        let e = connect("unix:///nonexistent/crust.sock", Duration::from_millis(200))
            .await
            .expect_err("no socket");
        assert!(e.to_string().contains("/nonexistent/crust.sock"), "{e}");
    }
}
