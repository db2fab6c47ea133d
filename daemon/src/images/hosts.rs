//! Registry host configuration and credentials.
//!
//! `[registry.hosts."<registry>"]` in crustd's config lists, per registry name as it appears
//! in image references (`docker.io`, `127.0.0.1:5000`):
//! - `mirrors`: endpoints (`http://host:port` or `https://host`) tried in order before the
//!   registry itself; `skip_upstream = true` drops the registry itself from the list (an
//!   endpoint override);
//! - `plain_http`: talk HTTP to the registry itself (`localhost` and `127.*` always do).
//!
//! An endpoint that cannot be reached is skipped for the next one; an endpoint that answers
//! (even "not found" or "unauthorized") ends the search: a mirror that does not have an
//! image does not send the pull upstream.
//!
//! Credentials: the CRI `AuthConfig` if given, else from a docker `config.json` as docker
//! reads it: the registry's `credHelpers` entry, else its `auths` entry (keyed by host or
//! `https://index.docker.io/v1/` for docker.io), else the default `credsStore` helper
//! (see [`super::credhelper`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::{Deserialize, Serialize};

/// The `[registry]` section of crustd's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Docker `config.json` to read credentials from (unset: none).
    #[serde(default)]
    pub docker_config: Option<PathBuf>,
    /// Per-registry endpoints.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostConfig>,
    /// Layers downloaded at once per pull (default 4).
    #[serde(default)]
    pub max_concurrent_downloads: Option<usize>,
}

/// One registry's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Mirror endpoints, tried in order.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Do not fall back to the registry itself.
    #[serde(default)]
    pub skip_upstream: bool,
    /// The registry itself speaks plain HTTP.
    #[serde(default)]
    pub plain_http: bool,
}

/// An endpoint to pull from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`.
    pub host: String,
    /// Plain HTTP instead of HTTPS.
    pub plain_http: bool,
}

/// Why a host configuration is invalid.
#[derive(Debug, thiserror::Error)]
#[error("registry {registry}: invalid mirror {mirror:?}: {why}")]
pub struct HostConfigError {
    /// The registry.
    pub registry: String,
    /// The mirror.
    pub mirror: String,
    /// Why.
    pub why: &'static str,
}

fn is_local(host: &str) -> bool {
    let h = host.split(':').next().unwrap_or(host);
    h == "localhost" || h.starts_with("127.") || host.starts_with("[::1]")
}

fn parse_endpoint(registry: &str, url: &str) -> Result<Endpoint, HostConfigError> {
    let err = |why| HostConfigError {
        registry: registry.into(),
        mirror: url.into(),
        why,
    };
    let (plain_http, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (false, r)
    } else {
        (is_local(url), url)
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(err("expected scheme://host[:port] without a path"));
    }
    Ok(Endpoint {
        host: host.into(),
        plain_http,
    })
}

impl RegistryConfig {
    /// Checks every mirror URL.
    pub fn validate(&self) -> Result<(), HostConfigError> {
        for (reg, h) in &self.hosts {
            for m in &h.mirrors {
                parse_endpoint(reg, m)?;
            }
        }
        Ok(())
    }

    /// The endpoints to try for `registry`, in order.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let host = self.hosts.get(registry);
        let mut out: Vec<Endpoint> = host
            .map(|h| {
                h.mirrors
                    .iter()
                    .filter_map(|m| parse_endpoint(registry, m).ok())
                    .collect()
            })
            .unwrap_or_default();
        if !host.is_some_and(|h| h.skip_upstream) {
            let upstream = if registry == "docker.io" {
                "registry-1.docker.io"
            } else {
                registry
            };
            out.push(Endpoint {
                host: upstream.into(),
                plain_http: host.is_some_and(|h| h.plain_http) || is_local(registry),
            });
        }
        out
    }
}

/// Credentials as the CRI `AuthConfig` carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// base64 `user:password`.
    pub auth: String,
    /// OAuth2 refresh (identity) token.
    pub identity_token: String,
    /// Bearer token for the registry.
    pub registry_token: String,
}

impl Credentials {
    /// The oci-client form. An identity token is sent as basic auth with user
    /// `<token>`, which token servers accept in place of a refresh-token grant.
    ///
    /// A registry token goes into an HTTP header as it is, so only visible ASCII is
    /// accepted (oci-client panicked on a newline); the other fields are base64-encoded.
    pub fn to_auth(&self) -> Result<RegistryAuth, String> {
        if !self.registry_token.is_empty() {
            if let Some(c) = self.registry_token.chars().find(|c| !c.is_ascii_graphic()) {
                return Err(format!(
                    "registry_token contains {c:?}: only visible ASCII characters are allowed"
                ));
            }
            return Ok(RegistryAuth::Bearer(self.registry_token.clone()));
        }
        if !self.identity_token.is_empty() {
            return Ok(RegistryAuth::Basic(
                "<token>".into(),
                self.identity_token.clone(),
            ));
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Ok(RegistryAuth::Basic(
                self.username.clone(),
                self.password.clone(),
            ));
        }
        if !self.auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .map_err(|e| format!("auth is not base64: {e}"))?;
            let s = String::from_utf8(raw).map_err(|_| "auth is not UTF-8".to_string())?;
            let (u, p) = s.split_once(':').ok_or("auth is not user:password")?;
            return Ok(RegistryAuth::Basic(u.into(), p.into()));
        }
        Ok(RegistryAuth::Anonymous)
    }

    /// Whether no credential is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    registrytoken: String,
}

/// Credentials for `registry` from a docker `config.json`, if it has an entry (a
/// credential helper it names runs off the async workers, see [`super::credhelper`]).
pub async fn docker_config_credentials(
    json: &[u8],
    registry: &str,
) -> Result<Option<Credentials>, String> {
    docker_config_credentials_in(json, registry, None).await
}

/// [`docker_config_credentials`] with credential helpers looked up in `helpers` instead of
/// `PATH`.
pub async fn docker_config_credentials_in(
    json: &[u8],
    registry: &str,
    helpers: Option<&std::path::Path>,
) -> Result<Option<Credentials>, String> {
    let cfg: DockerConfig =
        serde_json::from_slice(json).map_err(|e| format!("bad docker config.json: {e}"))?;
    let strip = |k: &str| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        k.split('/').next().unwrap_or(k).to_string()
    };
    let want = if registry == "docker.io" {
        "index.docker.io"
    } else {
        registry
    };
    let matches = |k: &str| strip(k) == want || strip(k) == registry;
    let timeout = super::credhelper::HELPER_TIMEOUT;
    if let Some((_, helper)) = cfg.cred_helpers.iter().find(|(k, _)| matches(k)) {
        return super::credhelper::get(helper, registry, helpers, timeout).await;
    }
    let entry = cfg
        .auths
        .into_iter()
        .find(|(k, _)| matches(k))
        .map(|(_, a)| Credentials {
            username: a.username,
            password: a.password,
            auth: a.auth,
            identity_token: a.identitytoken,
            registry_token: a.registrytoken,
        })
        .filter(|c| !c.is_empty());
    if entry.is_some() {
        return Ok(entry);
    }
    match cfg.creds_store.as_deref().filter(|s| !s.is_empty()) {
        Some(store) => super::credhelper::get(store, registry, helpers, timeout).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_and_credentials() {
        let cfg: RegistryConfig = toml::from_str(
            r#"
            [hosts."docker.io"]
            mirrors = ["http://127.0.0.1:5000", "https://mirror.example.com/"]
            [hosts."reg.example:5000"]
            plain_http = true
            skip_upstream = false
            [hosts."only.mirror"]
            mirrors = ["10.0.0.1:80"]
            skip_upstream = true
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        let e = cfg.endpoints("docker.io");
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            Endpoint {
                host: "127.0.0.1:5000".into(),
                plain_http: true
            }
        );
        assert_eq!(
            e[1],
            Endpoint {
                host: "mirror.example.com".into(),
                plain_http: false
            }
        );
        assert_eq!(
            e[2],
            Endpoint {
                host: "registry-1.docker.io".into(),
                plain_http: false
            }
        );
        assert!(cfg.endpoints("reg.example:5000")[0].plain_http);
        assert_eq!(cfg.endpoints("only.mirror").len(), 1);
        assert!(cfg.endpoints("localhost:5000")[0].plain_http);
        assert!(toml::from_str::<RegistryConfig>("[hosts.x]\nbogus = 1").is_err());
        let bad: RegistryConfig =
            toml::from_str("[hosts.x]\nmirrors = [\"http://h/path\"]").unwrap();
        assert!(bad.validate().is_err());

        let auth = base64::engine::general_purpose::STANDARD.encode("u:p");
        let c = Credentials {
            auth: auth.clone(),
            ..Default::default()
        };
        assert!(matches!(c.to_auth().unwrap(), RegistryAuth::Basic(u, p) if u == "u" && p == "p"));
        // A token that cannot be an HTTP header value is refused before oci-client sees it.
        for bad in ["a\nb", "a b", "tok\r", "\u{7f}", "é"] {
            let c = Credentials {
                registry_token: bad.into(),
                ..Default::default()
            };
            let e = c.to_auth().unwrap_err();
            assert!(e.contains("registry_token"), "{e}");
        }
        let c = Credentials {
            registry_token: "eyJhbGciOi.J9-_~+/=".into(),
            ..Default::default()
        };
        assert!(
            matches!(c.to_auth().unwrap(), RegistryAuth::Bearer(t) if t == "eyJhbGciOi.J9-_~+/=")
        );
        let j = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"username":"a","password":"b"}}}}}}"#
        );
        assert_eq!(
            docker_config_credentials(j.as_bytes(), "docker.io")
                .await
                .unwrap()
                .unwrap()
                .auth,
            auth
        );
        assert_eq!(
            docker_config_credentials(j.as_bytes(), "127.0.0.1:5000")
                .await
                .unwrap()
                .unwrap()
                .username,
            "a"
        );
        assert!(docker_config_credentials(j.as_bytes(), "other")
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn credential_helpers_take_precedence_as_in_docker() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        for (name, user) in [("per", "from-per-registry"), ("store", "from-store")] {
            let p = d.path().join(format!("docker-credential-{name}"));
            std::fs::write(
                &p,
                format!("#!/bin/sh\necho '{{\"Username\":\"{user}\",\"Secret\":\"s\"}}'\n"),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let j = br#"{"auths":{"a.example":{"username":"plain","password":"p"},"c.example":{}},
            "credHelpers":{"b.example":"per","a.example":"per"},"credsStore":"store"}"#;
        let user = |reg: &'static str| {
            let dir = d.path().to_path_buf();
            async move {
                docker_config_credentials_in(j, reg, Some(&dir))
                    .await
                    .unwrap()
                    .map(|c| c.username)
            }
        };
        // credHelpers beats auths; auths beats credsStore; an empty auths entry (what
        // docker writes when a store holds the secret) falls through to the store.
        assert_eq!(
            user("a.example").await.as_deref(),
            Some("from-per-registry")
        );
        assert_eq!(
            user("b.example").await.as_deref(),
            Some("from-per-registry")
        );
        assert_eq!(user("c.example").await.as_deref(), Some("from-store"));
        assert_eq!(user("other").await.as_deref(), Some("from-store"));
        let no_store = br#"{"auths":{"a.example":{"username":"plain","password":"p"}}}"#;
        let c = docker_config_credentials_in(no_store, "a.example", Some(d.path()))
            .await
            .unwrap();
        assert_eq!(c.unwrap().username, "plain");
        let broken = br#"{"credsStore":"absent"}"#;
        assert!(docker_config_credentials_in(broken, "x", Some(d.path()))
            .await
            .is_err());
    }
}
