//! Single-use, unguessable, expiring tokens naming a pending streaming request.
//!
//! A token is 16 bytes from the OS CSPRNG, base64url without padding. [`TokenCache::consume`]
//! removes the entry whether it is fresh or expired, so a token is honoured at most once.
//! Expired entries are swept on every insert. Requests are capped per target (the container
//! of an exec or attach, the pod of a port-forward: `max_per_target`) and in all
//! (`max_in_flight`, kubelet's 1000): whoever floods one container's tokens is refused once
//! that container holds its share, and when the whole cache is full a new request for a
//! target holding fewer tokens than the largest holder evicts that holder's oldest token.
//! So no client can deny streaming to a container it does not flood (issue 18: one global
//! cap of 1,000 was exhausted by one client for every container of the node).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::backend::PortForwardRequest;
use crate::remotecommand::Command;

/// Kubelet's token lifetime.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Kubelet's limit on requests waiting for their client.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;
/// The limit of requests waiting for their client for one container (exec, attach) or one
/// pod (port-forward): far more than any client waits on at once.
pub const DEFAULT_MAX_PER_TARGET: usize = 64;

/// A request waiting for its client to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingRequest {
    /// An exec or attach: served by `remotecommand`.
    Remote(Command),
    PortForward(PortForwardRequest),
}

impl PendingRequest {
    /// The URL path segment serving this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PendingRequest::Remote(Command::Exec(_)) => "exec",
            PendingRequest::Remote(Command::Attach(_)) => "attach",
            PendingRequest::PortForward(_) => "portforward",
        }
    }

    /// The container (exec, attach) or pod (port-forward) the request is for.
    pub fn target(&self) -> &str {
        match self {
            PendingRequest::Remote(Command::Exec(r)) => &r.container_id,
            PendingRequest::Remote(Command::Attach(r)) => &r.container_id,
            PendingRequest::PortForward(r) => &r.pod_sandbox_id,
        }
    }
}

/// Why a token was not issued or not honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("maximum number of in-flight streaming requests ({max}) exceeded")]
    TooManyInFlight { max: usize },
    #[error("maximum number of in-flight streaming requests for {target} ({max}) exceeded")]
    TooManyForTarget { target: String, max: usize },
    #[error("reading random bytes for a token: {0}")]
    Random(String),
    #[error("token is unknown or was already used")]
    Unknown,
    #[error("token expired {ago:?} ago")]
    Expired { ago: Duration },
}

/// The token → request map.
pub struct TokenCache {
    ttl: Duration,
    max_in_flight: usize,
    max_per_target: usize,
    entries: Mutex<HashMap<String, (PendingRequest, Instant)>>,
}

impl TokenCache {
    /// A cache whose tokens live `ttl`, holding at most `max_in_flight` requests and
    /// [`DEFAULT_MAX_PER_TARGET`] per container or pod.
    pub fn new(ttl: Duration, max_in_flight: usize) -> Self {
        Self::with_target_cap(ttl, max_in_flight, DEFAULT_MAX_PER_TARGET)
    }

    /// A cache holding at most `max_in_flight` requests, `max_per_target` of them for one
    /// container or pod.
    pub fn with_target_cap(ttl: Duration, max_in_flight: usize, max_per_target: usize) -> Self {
        Self {
            ttl,
            max_in_flight,
            max_per_target: max_per_target.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `req` and returns its fresh token.
    pub fn insert(&self, req: PendingRequest) -> Result<String, TokenError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, expires)| *expires > now);
        let mut per_target: HashMap<&str, usize> = HashMap::new();
        for (r, _) in map.values() {
            *per_target.entry(r.target()).or_default() += 1;
        }
        let mine = per_target.get(req.target()).copied().unwrap_or(0);
        if mine >= self.max_per_target {
            return Err(TokenError::TooManyForTarget {
                target: req.target().to_string(),
                max: self.max_per_target,
            });
        }
        if map.len() >= self.max_in_flight {
            // Full: the largest holder gives up its oldest token, unless that is this
            // request's own target (or no holder is larger), which is then refused.
            let (top, n) = per_target
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(t, n)| (t.to_string(), *n))
                .unwrap_or_default();
            if n <= mine + 1 {
                return Err(TokenError::TooManyInFlight {
                    max: self.max_in_flight,
                });
            }
            let oldest = map
                .iter()
                .filter(|(_, (r, _))| r.target() == top)
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(token.clone(), (req, now + self.ttl));
        Ok(token)
    }

    /// Takes the request of `token`, which is then gone for good.
    pub fn consume(&self, token: &str) -> Result<PendingRequest, TokenError> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (req, expires) = map.remove(token).ok_or(TokenError::Unknown)?;
        let now = Instant::now();
        if expires <= now {
            return Err(TokenError::Expired { ago: now - expires });
        }
        Ok(req)
    }

    /// Requests currently held (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no request is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ExecRequest;

    fn pf() -> PendingRequest {
        pf_for("p")
    }

    fn pf_for(pod: &str) -> PendingRequest {
        PendingRequest::PortForward(PortForwardRequest {
            pod_sandbox_id: pod.into(),
            ports: vec![80],
        })
    }

    fn exec_in(container: &str) -> PendingRequest {
        PendingRequest::Remote(Command::Exec(ExecRequest {
            container_id: container.into(),
            cmd: vec!["sh".into()],
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        }))
    }

    #[test]
    fn tokens_are_single_use_and_unguessable() {
        let c = TokenCache::new(DEFAULT_TOKEN_TTL, 10);
        let t = c.insert(pf()).unwrap();
        assert_eq!(t.len(), 22);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let t2 = c.insert(pf()).unwrap();
        assert_ne!(t, t2);
        assert_eq!(c.consume(&t).unwrap(), pf());
        assert_eq!(c.consume(&t), Err(TokenError::Unknown));
        assert_eq!(c.consume("nope"), Err(TokenError::Unknown));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn tokens_expire_and_in_flight_is_capped() {
        let c = TokenCache::new(Duration::from_millis(20), 2);
        let t = c.insert(pf()).unwrap();
        c.insert(pf()).unwrap();
        assert_eq!(c.insert(pf()), Err(TokenError::TooManyInFlight { max: 2 }));
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(c.consume(&t), Err(TokenError::Expired { .. })));
        // Expired entries are swept, freeing room.
        c.insert(pf()).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn one_containers_flood_does_not_deny_another() {
        // The defaults crustd runs with: one client asks for as many exec tokens for its
        // container as it can (a request per RPC, never connecting).
        let c = TokenCache::new(DEFAULT_TOKEN_TTL, DEFAULT_MAX_IN_FLIGHT);
        let mut issued = 0;
        for _ in 0..DEFAULT_MAX_IN_FLIGHT * 2 {
            match c.insert(exec_in("flooded")) {
                Ok(_) => issued += 1,
                Err(e) => assert_eq!(
                    e,
                    TokenError::TooManyForTarget {
                        target: "flooded".into(),
                        max: DEFAULT_MAX_PER_TARGET
                    }
                ),
            }
        }
        assert_eq!(issued, DEFAULT_MAX_PER_TARGET);
        // Every other container and pod still gets its tokens.
        let t = c.insert(exec_in("other")).unwrap();
        c.insert(pf_for("pod")).unwrap();
        assert_eq!(c.consume(&t).unwrap(), exec_in("other"));
    }

    #[test]
    fn a_full_cache_evicts_the_largest_holders_oldest_token() {
        let c = TokenCache::with_target_cap(DEFAULT_TOKEN_TTL, 4, 3);
        let old = c.insert(exec_in("a")).unwrap();
        for _ in 0..2 {
            c.insert(exec_in("a")).unwrap();
        }
        c.insert(exec_in("b")).unwrap();
        // Full (4): b (1 held) evicts a's oldest; a's flood only costs a.
        let b2 = c.insert(exec_in("b")).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c.consume(&old), Err(TokenError::Unknown));
        assert_eq!(c.consume(&b2).unwrap(), exec_in("b"));
        c.insert(exec_in("b")).unwrap();
        // Two holders of two each: nobody is larger than b would be, so b is refused.
        assert_eq!(
            c.insert(exec_in("b")),
            Err(TokenError::TooManyInFlight { max: 4 })
        );
    }
}
