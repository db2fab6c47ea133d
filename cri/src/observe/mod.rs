//! The one place every gRPC call crustd serves is observed (STYLE rule 11, as containerd's
//! gRPC interceptors): a tower layer around all the tonic services that
//!
//! - logs each call at debug (method, code, milliseconds);
//! - logs each failed call at warn with its method, gRPC code, the full error (the status
//!   message, which [`crate::status`] builds from the error and its causes) and the pod,
//!   container and image ids the request named ([`ids`], decoded only on failure);
//! - feeds the metrics, when they are on: requests, errors by code, latency
//!   ([`crate::metrics::Metrics`]).
//!
//! A call ends when its response body ends: with the `grpc-status` of the trailers, or of
//! the headers for a trailers-only answer (how tonic answers a failed unary call). A
//! response dropped before its end (the client went away) counts as `Cancelled`, logged at
//! info. Lifecycle events (pod ready, container started, image pulled, ...) are logged at
//! info where they happen, in `crust_daemon` and the image handlers.

pub mod ids;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::metrics::{Metrics, Rpc};

/// Request bytes kept for the ids of a failed call.
const KEEP_REQUEST_BYTES: usize = 64 * 1024;

/// The layer; `metrics` None when `/metrics` is off.
#[derive(Clone, Default)]
pub struct ObserveLayer {
    metrics: Option<Arc<Metrics>>,
}

impl ObserveLayer {
    /// Observes calls, feeding `metrics` if given.
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`ObserveLayer`] wraps around the tonic routes.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

impl<S, B> Service<Request<Body>> for Observe<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Observed>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Response<Observed>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let call = Call::start(req.uri().path(), self.metrics.clone());
        let kept = Kept::default();
        let req = req.map(|b| {
            Body::new(Tee {
                inner: b,
                kept: kept.clone(),
            })
        });
        let fut = self.inner.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(resp) => {
                    let header = Status::from_header_map(resp.headers());
                    Ok(resp.map(|b| Observed {
                        inner: Body::new(b),
                        pending: Some(Pending { call, kept, header }),
                    }))
                }
                Err(e) => {
                    call.finish(&kept, Code::Unknown, "the service failed", false);
                    Err(e)
                }
            }
        })
    }
}

/// The request bytes kept so far (at most [`KEEP_REQUEST_BYTES`]).
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<Bytes>>>);

impl Kept {
    fn push(&self, b: &Bytes) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if v.iter().map(Bytes::len).sum::<usize>() < KEEP_REQUEST_BYTES {
            v.push(b.clone());
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).concat()
    }
}

/// The request body, its data frames kept (reference-counted, not copied) as they pass.
struct Tee {
    inner: Body,
    kept: Kept,
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let p = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &p {
            if let Some(d) = f.data_ref() {
                self.kept.push(d);
            }
        }
        p
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One call in flight.
struct Call {
    service: String,
    method: String,
    started: Instant,
    rpc: Option<(Arc<Metrics>, Rpc)>,
}

impl Call {
    fn start(path: &str, metrics: Option<Arc<Metrics>>) -> Self {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().unwrap_or_default().to_string();
        let method = parts.next().unwrap_or_default().to_string();
        let rpc = metrics.map(|m| {
            let rpc = m.rpc(&service, &method);
            m.started(&rpc);
            (m, rpc)
        });
        Self {
            service,
            method,
            started: Instant::now(),
            rpc,
        }
    }

    /// Records the end of the call (`cancelled`: the client went away first).
    fn finish(self, kept: &Kept, code: Code, message: &str, cancelled: bool) {
        let took = self.started.elapsed();
        if let Some((m, rpc)) = &self.rpc {
            m.finished(rpc, code, took);
        }
        let ms = (took.as_secs_f64() * 1e6).round() / 1e3;
        let (service, method) = (self.service.as_str(), self.method.as_str());
        if code == Code::Ok {
            tracing::debug!(target: "crust_cri::call", service, method, ms, "call ok");
            return;
        }
        let body = kept.bytes();
        let ids = ids::first_message(&body)
            .map(|m| ids::extract(method, m))
            .unwrap_or_default();
        if cancelled {
            tracing::info!(target: "crust_cri::call", service, method, ms, pod = ids.pod, container = ids.container, image = ids.image, "call cancelled: the client went away");
            return;
        }
        tracing::warn!(
            target: "crust_cri::call",
            service,
            method,
            code = ?code,
            pod = ids.pod,
            pod_name = ids.pod_name,
            container = ids.container,
            container_name = ids.container_name,
            image = ids.image,
            path = ids.path,
            ms,
            error = message,
            "call failed"
        );
    }
}

/// What the call's end needs.
struct Pending {
    call: Call,
    kept: Kept,
    /// The status in the response headers (a trailers-only answer).
    header: Option<Status>,
}

impl Pending {
    fn finish(self, status: Option<Status>, cancelled: bool) {
        let st = status.or(self.header);
        let (code, message) = match &st {
            Some(s) => (s.code(), s.message()),
            None if cancelled => (Code::Cancelled, ""),
            None => (Code::Unknown, "the response ended without a grpc-status"),
        };
        let cancelled = cancelled && st.is_none();
        self.call.finish(&self.kept, code, message, cancelled);
    }
}

/// The response body; the call ends with it.
pub struct Observed {
    inner: Body,
    pending: Option<Pending>,
}

impl HttpBody for Observed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let p = Pin::new(&mut self.inner).poll_frame(cx);
        match &p {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(t) = f.trailers_ref() {
                    let st = Status::from_header_map(t);
                    if let Some(pd) = self.pending.take() {
                        pd.finish(st, false);
                    }
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(pd) = self.pending.take() {
                    pd.finish(Some(e.clone()), false);
                }
            }
            Poll::Ready(None) => {
                if let Some(pd) = self.pending.take() {
                    pd.finish(None, false);
                }
            }
            Poll::Pending => {}
        }
        p
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(pd) = self.pending.take() {
            // Dropped unfinished: a trailers-only answer hyper sent from the headers alone,
            // or a client that went away.
            pd.finish(None, true);
        }
    }
}
