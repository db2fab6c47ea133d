//! Image references as kubelet and crictl spell them, normalised as containerd does:
//! `busybox` → `docker.io/library/busybox:latest`, `foo/bar@sha256:…` →
//! `docker.io/foo/bar@sha256:…`. A reference with both tag and digest is pulled by digest.

use oci_client::Reference;

use super::Error;
use crate::digest::Digest;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag, if pulled by tag.
    pub tag: Option<String>,
    /// Digest, if pulled by digest.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let invalid = |why: String| Error::InvalidReference {
            reference: s.to_string(),
            why,
        };
        if s.is_empty() || s.trim() != s {
            return Err(invalid("empty or surrounded by spaces".into()));
        }
        let r: Reference = s
            .parse()
            .map_err(|e: oci_client::ParseError| invalid(e.to_string()))?;
        if r.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase".into()));
        }
        let digest = r
            .digest()
            .map(|d| Digest::parse(d).map_err(|e| invalid(e.to_string())))
            .transpose()?;
        Ok(Self {
            registry: r.registry().to_string(),
            repository: r.repository().to_string(),
            tag: if digest.is_some() {
                None
            } else {
                r.tag().map(str::to_string)
            },
            digest,
        })
    }

    /// `registry/repository`.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The normalised name: `repo:tag` or `repo@digest`.
    pub fn name(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.repo()),
            (None, Some(t)) => format!("{}:{t}", self.repo()),
            (None, None) => format!("{}:latest", self.repo()),
        }
    }

    /// The same repository at `digest`.
    pub fn with_digest(&self, digest: &Digest) -> Self {
        Self {
            digest: Some(digest.clone()),
            tag: None,
            ..self.clone()
        }
    }
}

/// Whether a stored name is a digest reference (`…@sha256:…`).
pub fn is_digest_name(name: &str) -> bool {
    name.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_containerd() {
        let d = format!("sha256:{}", "a".repeat(64));
        for (input, want) in [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            ("busybox:1.36", "docker.io/library/busybox:1.36".into()),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest".into(),
            ),
            ("foo/bar", "docker.io/foo/bar:latest".into()),
            ("127.0.0.1:5000/x/y:t", "127.0.0.1:5000/x/y:t".into()),
            ("localhost/x", "localhost/x:latest".into()),
            (
                &format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                &format!("busybox:1@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
        ] {
            assert_eq!(ImageRef::parse(input).unwrap().name(), want, "{input}");
        }
        for bad in ["", "UPPER/case", "a b", "busybox@sha256:12"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
