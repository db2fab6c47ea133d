//! `crust.v1.Images/Import`: crust's own unary RPC on crustd's socket that imports an image
//! archive (OCI layout tar or `docker save` tar) from a path on crustd's host. The CRI has
//! no import call, and reading the archive where crustd runs avoids streaming hundreds of
//! megabytes through gRPC. Messages are declared here with prost; the service is written
//! out by hand (no build script) in the shape tonic's generator produces.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use crust_daemon::images::Images;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::{Request, Response, Status};

/// Import request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImportRequest {
    /// Absolute path of the archive on crustd's host.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Name for images the archive does not name (or repository for a bare tag).
    #[prost(string, tag = "2")]
    pub name: String,
}

/// One imported image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImportedImage {
    /// Image id (config digest).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Its tags.
    #[prost(string, repeated, tag = "2")]
    pub repo_tags: Vec<String>,
}

/// Import response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImportResponse {
    /// The images imported.
    #[prost(message, repeated, tag = "1")]
    pub images: Vec<ImportedImage>,
}

/// The RPC path.
pub const IMPORT_PATH: &str = "/crust.v1.Images/Import";

/// Performs an import (server side, also used by `crustctl import --root`).
pub async fn import(images: &Images, req: ImportRequest) -> Result<ImportResponse, Status> {
    let path = Path::new(&req.path);
    if !path.is_absolute() {
        return Err(Status::invalid_argument(format!(
            "import path {:?} must be absolute",
            req.path
        )));
    }
    let name = Some(req.name.as_str()).filter(|n| !n.is_empty());
    let imgs = images
        .import(path, name)
        .await
        .map_err(crate::status::from_error)?;
    tracing::info!(path = %req.path, count = imgs.len(), "imported");
    Ok(ImportResponse {
        images: imgs
            .into_iter()
            .map(|i| ImportedImage {
                id: i.id().to_string(),
                repo_tags: i.repo_tags,
            })
            .collect(),
    })
}

/// The server side of `crust.v1.Images`.
#[derive(Debug, Clone)]
pub struct ImportServer {
    images: Arc<Images>,
}

impl ImportServer {
    /// Serves imports into `images`.
    pub fn new(images: Arc<Images>) -> Self {
        Self { images }
    }
}

impl tonic::server::NamedService for ImportServer {
    const NAME: &'static str = "crust.v1.Images";
}

struct ImportSvc(Arc<Images>);

impl tonic::server::UnaryService<ImportRequest> for ImportSvc {
    type Response = ImportResponse;
    type Future = BoxFuture<Response<ImportResponse>, Status>;

    fn call(&mut self, request: Request<ImportRequest>) -> Self::Future {
        let images = self.0.clone();
        Box::pin(async move {
            import(&images, request.into_inner())
                .await
                .map(Response::new)
        })
    }
}

impl<B> Service<http::Request<B>> for ImportServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != IMPORT_PATH {
            let path = req.uri().path().to_string();
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("unknown method {path}")).into_http())
            });
        }
        let images = self.images.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(ImportSvc(images), req).await)
        })
    }
}

/// Client side: calls Import over `channel`.
pub async fn call(
    channel: tonic::transport::Channel,
    req: ImportRequest,
) -> Result<ImportResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("crustd not ready: {e}")))?;
    let path = http::uri::PathAndQuery::from_static(IMPORT_PATH);
    grpc.unary(Request::new(req), path, tonic_prost::ProstCodec::default())
        .await
        .map(Response::into_inner)
}
