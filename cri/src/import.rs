//! `crust.v1.Images/Import`: crust's own unary RPC on crustd's socket that imports an image
//! archive (OCI layout tar or `docker save` tar) from a path on crustd's host. The CRI has
//! no import call, and reading the archive where crustd runs avoids streaming hundreds of
//! megabytes through gRPC. The messages (and the client call) are `crust_client::import`,
//! the one definition both sides use; the service is written out here by hand (no build
//! script) in the shape tonic's generator produces.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

pub use crust_client::import::{ImportRequest, ImportResponse, ImportedImage, IMPORT_PATH};
use crust_daemon::images::Images;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::{Request, Response, Status};

/// Performs an import (the RPC, and `crustd import` while crustd is stopped).
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
    const NAME: &'static str = crust_client::import::SERVICE;
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
