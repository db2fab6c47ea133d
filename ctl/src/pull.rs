//! `crustctl pull IMAGE [--creds USER[:PASS]] [--auth BASE64]`.

use k8s_cri::v1::{AuthConfig, ImageSpec, PullImageRequest};

use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image.
    image: String,
    /// Credentials `USERNAME[:PASSWORD]`.
    #[arg(long)]
    creds: Option<String>,
    /// base64 `USERNAME:PASSWORD`.
    #[arg(long)]
    auth: Option<String>,
    /// Registry bearer token.
    #[arg(long)]
    registry_token: Option<String>,
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let mut auth = AuthConfig::default();
    if let Some(c) = &a.creds {
        let (u, p) = c.split_once(':').unwrap_or((c, ""));
        auth.username = u.into();
        auth.password = p.into();
    }
    auth.auth = a.auth.unwrap_or_default();
    auth.registry_token = a.registry_token.unwrap_or_default();
    let auth = (auth != AuthConfig::default()).then_some(auth);
    let req = PullImageRequest {
        image: Some(ImageSpec {
            image: a.image,
            ..Default::default()
        }),
        auth,
        sandbox_config: None,
    };
    let resp = conn
        .images()
        .await?
        .pull_image(req)
        .await
        .map_err(rpc)?
        .into_inner();
    println!("Image is up to date for {}", resp.image_ref);
    Ok(())
}
