//! Single-use, unguessable, expiring tokens naming a pending streaming request.
//!
//! A token is 16 bytes from the OS CSPRNG, base64url without padding. [`TokenCache::consume`]
//! removes the entry whether it is fresh or expired, so a token is honoured at most once.
//! At most `max_in_flight` requests are held (kubelet: 1000); expired entries are swept on
//! every insert.

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
}

/// Why a token was not issued or not honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("maximum number of in-flight streaming requests ({max}) exceeded")]
    TooManyInFlight { max: usize },
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
    entries: Mutex<HashMap<String, (PendingRequest, Instant)>>,
}

impl TokenCache {
    /// A cache whose tokens live `ttl`, holding at most `max_in_flight` requests.
    pub fn new(ttl: Duration, max_in_flight: usize) -> Self {
        Self {
            ttl,
            max_in_flight,
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
        if map.len() >= self.max_in_flight {
            return Err(TokenError::TooManyInFlight {
                max: self.max_in_flight,
            });
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

    fn pf() -> PendingRequest {
        PendingRequest::PortForward(PortForwardRequest {
            pod_sandbox_id: "p".into(),
            ports: vec![80],
        })
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
}
