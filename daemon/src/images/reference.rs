//! Image references as kubelet and crictl spell them, normalised as containerd does:
//! `busybox` → `docker.io/library/busybox:latest`, `foo/bar@sha256:…` →
//! `docker.io/foo/bar@sha256:…`. A reference with both tag and digest is pulled by digest.
//!
//! The grammar is distribution's (`reference/regexp.go`), checked by hand: oci-spec's
//! parser builds one large regex (Unicode `\w` in the tag) on first use and keeps it
//! for the life of the process, about 7 MB of crustd's heap after its first pull.
//!
//! ```text
//! reference := name [ ":" tag ] [ "@" digest ]
//! name      := [ domain "/" ] path ( "/" path )*
//! domain    := domain-component ( "." domain-component )* [ ":" [0-9]+ ]
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path      := [a-z0-9]+ ( separator [a-z0-9]+ )*      separator := [_.] | "__" | "-"+
//! tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest    := algorithm ":" hex{32,}   algorithm := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
//! ```

use super::Error;
use crate::digest::Digest;

/// The longest repository path distribution accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

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

fn domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `host[:port]`.
fn domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    host.split('.').all(domain_component)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// `algorithm:hex` as the grammar has it; the algorithm's own length rules come after.
fn digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let component = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    alg.split(['-', '_', '+', '.']).all(component)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ImageRef {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidReference {
            reference: s.to_string(),
            why: why.to_string(),
        };
        if s.is_empty() || s.trim() != s {
            return Err(invalid("empty or surrounded by spaces"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            if !digest_syntax(d) {
                return Err(invalid("invalid reference format"));
            }
        }
        // A tag is after the last ':' that follows the last '/' (a port's ':' precedes one).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag_part) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if tag_part.is_some_and(|t| !tag(t)) {
            return Err(invalid("invalid reference format"));
        }
        let parts: Vec<&str> = name.split('/').collect();
        let paths_ok = |p: &[&str]| !p.is_empty() && p.iter().all(|c| path_component(c));
        // The first component may be a domain (kept as one only if it looks like a host,
        // as distribution's splitDomain decides).
        let valid =
            paths_ok(&parts) || (parts.len() > 1 && domain(parts[0]) && paths_ok(&parts[1..]));
        if !valid {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(invalid("repository name must be lowercase"));
            }
            return Err(invalid("invalid reference format"));
        }
        let first = parts[0];
        let (mut registry, mut repository) = if parts.len() > 1
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            (first.to_string(), parts[1..].join("/"))
        } else {
            ("docker.io".to_string(), name.to_string())
        };
        if registry == "index.docker.io" {
            registry = "docker.io".into();
        }
        if registry == "docker.io" && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase"));
        }
        if repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                "repository name must not be longer than 255 characters",
            ));
        }
        let digest = match digest {
            Some(d) => {
                let want = match d.split_once(':').map(|(a, _)| a) {
                    Some("sha256") => 64,
                    Some("sha384") => 96,
                    Some("sha512") => 128,
                    _ => return Err(invalid("unsupported digest algorithm")),
                };
                if d.len() - d.find(':').map_or(0, |i| i + 1) != want {
                    return Err(invalid("invalid checksum digest length"));
                }
                Some(Digest::parse(d).map_err(|e| invalid(&e.to_string()))?)
            }
            None => None,
        };
        Ok(Self {
            registry,
            repository,
            tag: if digest.is_some() {
                None
            } else {
                Some(tag_part.unwrap_or("latest").to_string())
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

    /// The hand-written grammar agrees with oci-spec's regex-based parser (the one it
    /// replaces) on valid and invalid references alike (ASCII input; distribution's tag
    /// grammar is ASCII, oci-spec's regex also takes Unicode letters there).
    #[test]
    fn agrees_with_oci_spec() {
        let hex = "0123456789abcdef".repeat(4);
        let mut inputs: Vec<String> = [
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
            "docker.io/busybox",
            "index.docker.io/busybox",
            "index.docker.io/foo/bar:t",
            "foo/bar",
            "foo/bar/baz:x",
            "127.0.0.1:5000/x/y:t",
            "localhost/x",
            "localhost:5000/x",
            "localhost",
            "test.com:tag",
            "test.com:5000",
            "test.com/repo:tag",
            "test:5000/repo",
            "sub-dom1.foo.com/bar/baz/quux",
            "a.b-c.d:1/e__f/g--h/i.j_k:T_.-9",
            "UPPER/case",
            "Foo.com/bar",
            "foo/Bar",
            "Busybox",
            "a//b",
            "a/",
            "/a",
            ":t",
            "a:",
            "a:-x",
            "a:.x",
            "a:_x",
            "a::b",
            "-a",
            "a-",
            "a__b",
            "a___b",
            "a..b",
            "a._b",
            "a----b",
            "x.-y/z",
            "-x.com/y",
            "x-.com/y",
            "x.com:/y",
            "x.com:12a/y",
            "a b",
            "a@b",
            "a@sha256:12",
            "h:1/p:t:u",
            "a/b:c/d",
            "ab:1.2.3-rc_1",
            &format!("a:{}", "t".repeat(128)),
            &format!("a:{}", "t".repeat(129)),
            &format!("{}/b", "a".repeat(300)),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for d in [
            format!("sha256:{hex}"),
            format!("sha512:{hex}{hex}"),
            format!("sha384:{hex}{}", &hex[..32]),
            format!("sha256:{}", &hex[..40]),
            format!("md5:{}", &hex[..32]),
            format!("sha256+b64.x_y-z:{hex}"),
            format!("sha256:{}G", &hex[..63]),
            format!("SHA256:{hex}"),
        ] {
            for n in ["busybox", "busybox:1", "r.io:5/a/b:t", "r.io:5/a/b"] {
                inputs.push(format!("{n}@{d}"));
            }
        }
        for input in &inputs {
            let ours = ImageRef::parse(input);
            let theirs: Result<oci_client::Reference, _> = input.parse();
            let theirs = theirs.ok().filter(|r| {
                !r.repository().bytes().any(|b| b.is_ascii_uppercase())
                    && r.digest().is_none_or(|d| Digest::parse(d).is_ok())
            });
            match (&ours, &theirs) {
                (Ok(a), Some(b)) => {
                    assert_eq!(a.registry, b.registry(), "{input}");
                    assert_eq!(a.repository, b.repository(), "{input}");
                    assert_eq!(
                        a.digest.as_ref().map(|d| d.to_string()).as_deref(),
                        b.digest(),
                        "{input}"
                    );
                    if a.digest.is_none() {
                        assert_eq!(a.tag.as_deref(), b.tag(), "{input}");
                    }
                }
                (Err(_), None) => {}
                _ => panic!("{input}: ours {ours:?}, oci-spec {theirs:?}"),
            }
        }
    }
}
