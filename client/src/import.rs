//! `crust.v1.Images/Import`: crust's own unary RPC on crustd's socket that imports an image
//! archive (OCI layout tar or `docker save` tar) from a path on crustd's host. The CRI has
//! no import call, and reading the archive where crustd runs avoids streaming hundreds of
//! megabytes through gRPC. The messages are declared here with prost (no build script) and
//! are the one definition both sides use: the server is `crust_cri::import`.

use tonic::codegen::http;
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

/// The service name.
pub const SERVICE: &str = "crust.v1.Images";
/// The RPC path.
pub const IMPORT_PATH: &str = "/crust.v1.Images/Import";

/// Calls Import over `channel`.
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
