//! GetContainerEvents: a stream of container lifecycle events with the pod's and the
//! containers' status at the time, as kubelet's evented PLEG expects. A stream never ends
//! by itself; at shutdown it ends with Unavailable (kubelet then relists and reconnects).

use std::pin::Pin;
use std::sync::Arc;

use crust_daemon::runtime::{EventKind, Runtime};
use k8s_cri::v1 as cri;
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;

use super::convert;
use crate::server::Closing;

type Stream =
    Pin<Box<dyn futures::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

pub fn stream(rt: Arc<Runtime>, mut closing: Closing) -> Stream {
    let mut rx = rt.subscribe();
    Box::pin(async_stream(move |tx| async move {
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                () = closing.closed() => {
                    let _ = tx.send(Err(Status::unavailable("crustd is shutting down"))).await;
                    return;
                }
            };
            let ev = match received {
                Ok(ev) => ev,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let kind = match ev.kind {
                EventKind::Created => cri::ContainerEventType::ContainerCreatedEvent,
                EventKind::Started => cri::ContainerEventType::ContainerStartedEvent,
                EventKind::Stopped => cri::ContainerEventType::ContainerStoppedEvent,
                EventKind::Deleted => cri::ContainerEventType::ContainerDeletedEvent,
            };
            let pod = rt.pod(&ev.pod_id).ok();
            let resp = cri::ContainerEventResponse {
                container_id: ev.container_id,
                container_event_type: kind as i32,
                created_at: ev.at,
                pod_sandbox_status: pod.as_ref().map(convert::pod_status),
                containers_statuses: rt
                    .pod_containers(&ev.pod_id)
                    .iter()
                    .map(convert::container_status)
                    .collect(),
            };
            if tx.send(Ok(resp)).await.is_err() {
                return;
            }
        }
    }))
}

/// A stream fed by `f` through a channel (a tiny stand-in for the async-stream crate).
fn async_stream<F, Fut>(
    f: F,
) -> tokio_stream::wrappers::ReceiverStream<Result<cri::ContainerEventResponse, Status>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<cri::ContainerEventResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
