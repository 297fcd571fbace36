//! Streamable HTTP session ids that need no server-side state: `v1.<issued>.<nonce>.<mac>`,
//! where the MAC is HMAC-SHA256 over the id and the principal's name, keyed by a key derived
//! from `server.session_secret` with HKDF and a label of its own (`crate::keys`; random per
//! process when unset). With a configured secret an id
//! survives restarts and works on every replica; a forged, foreign, expired or (without a
//! secret) pre-restart id is refused, and the transport answers 404 so the client re-initializes.
//! `DELETE /mcp` ends a session early: its nonce is remembered (in memory, per process, until
//! the id would have expired anyway) and refused from then on.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::keys::{self, KeyUse};

type HmacSha256 = Hmac<Sha256>;

/// How long a session id stays valid.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Tolerated clock skew between replicas for ids "issued in the future".
const CLOCK_SKEW: u64 = 300;

/// Why a session id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("malformed session id")]
    Malformed,
    #[error("session id was not issued by this server to this principal")]
    BadSignature,
    #[error("session id has expired")]
    Expired,
    #[error("session was terminated")]
    Terminated,
}

/// Most terminated sessions remembered at once (expired ones are pruned first).
const MAX_TERMINATED: usize = 100_000;

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId {
    /// The random part, unique per session.
    pub nonce: String,
    /// Issue time, seconds since the epoch.
    pub issued: u64,
}

impl SessionId {
    /// How long until this id expires anyway (how long its end must be remembered).
    pub fn remaining_life(&self) -> Duration {
        let expires = self.issued + SESSION_MAX_AGE.as_secs() + CLOCK_SKEW;
        Duration::from_secs(expires.saturating_sub(now_secs()).max(1))
    }
}

/// Mints and verifies sealed session ids.
pub struct SessionSealer {
    key: [u8; 32],
    /// Terminated nonces → the time their id expires anyway.
    terminated: Mutex<HashMap<String, u64>>,
}

impl SessionSealer {
    /// [`SessionSealer::new`] from the configured `server.session_secret`.
    pub fn from_secret(secret: Option<&SecretString>) -> Self {
        Self::new(secret.map(|s| s.expose_secret()))
    }

    /// Key = HKDF-SHA256 of the configured secret with the session-id label, or 32 random
    /// bytes.
    pub fn new(secret: Option<&str>) -> Self {
        let key = match secret {
            Some(secret) => keys::derive(secret.as_bytes(), KeyUse::SessionId),
            None => {
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                key
            }
        };
        SessionSealer {
            key,
            terminated: Mutex::new(HashMap::new()),
        }
    }

    /// A new session id for `principal`.
    pub fn mint(&self, principal: &str) -> String {
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        let body = format!("v1.{}.{}", now_secs(), hex::encode(nonce));
        let mac = self.mac(&body, principal);
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Check an id presented by `principal`.
    pub fn verify(&self, id: &str, principal: &str) -> Result<SessionId, SessionError> {
        let (body, mac_b64) = id.rsplit_once('.').ok_or(SessionError::Malformed)?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(issued), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Malformed);
        };
        let issued: u64 = issued.parse().map_err(|_| SessionError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac_b64)
            .map_err(|_| SessionError::Malformed)?;
        let verifier = self.hmac(body, principal);
        verifier
            .verify_slice(&mac)
            .map_err(|_| SessionError::BadSignature)?;
        let now = now_secs();
        if issued > now + CLOCK_SKEW || now.saturating_sub(issued) > SESSION_MAX_AGE.as_secs() {
            return Err(SessionError::Expired);
        }
        if self.terminated().contains_key(nonce) {
            return Err(SessionError::Terminated);
        }
        Ok(SessionId {
            nonce: nonce.to_owned(),
            issued,
        })
    }

    /// End a verified session: its id is refused from now on (on this process).
    pub fn terminate(&self, session: &SessionId) {
        let expires = session.issued + SESSION_MAX_AGE.as_secs() + CLOCK_SKEW;
        let mut terminated = self.terminated();
        if terminated.len() >= MAX_TERMINATED {
            let now = now_secs();
            terminated.retain(|_, expires| *expires > now);
        }
        if terminated.len() >= MAX_TERMINATED {
            tracing::warn!("too many terminated sessions remembered; this one may be reused");
            return;
        }
        terminated.insert(session.nonce.clone(), expires);
    }

    fn terminated(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.terminated
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn hmac(&self, body: &str, principal: &str) -> HmacSha256 {
        // new_from_slice accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body.as_bytes());
        mac.update(b"\n");
        mac.update(principal.as_bytes());
        mac
    }

    fn mac(&self, body: &str, principal: &str) -> Vec<u8> {
        self.hmac(body, principal).finalize().into_bytes().to_vec()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let sealer = SessionSealer::new(Some("secret"));
        let id = sealer.mint("alice");
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
        let s = sealer.verify(&id, "alice").unwrap();
        assert_eq!(s.nonce.len(), 32);
        assert_eq!(sealer.verify(&id, "bob"), Err(SessionError::BadSignature));
        assert_ne!(sealer.mint("alice"), id, "ids are unique");
    }

    #[test]
    fn same_secret_survives_restart_random_does_not() {
        let id = SessionSealer::new(Some("secret")).mint("alice");
        assert!(
            SessionSealer::new(Some("secret"))
                .verify(&id, "alice")
                .is_ok()
        );
        assert_eq!(
            SessionSealer::new(Some("other")).verify(&id, "alice"),
            Err(SessionError::BadSignature)
        );
        let id = SessionSealer::new(None).mint("alice");
        assert!(SessionSealer::new(None).verify(&id, "alice").is_err());
    }

    #[test]
    fn the_key_is_derived_with_its_own_label_not_a_raw_hash() {
        use sha2::Digest;
        // An id sealed with the old key (plain SHA-256 of the secret) is refused; one sealed
        // with the HKDF session-id key is accepted.
        let body = format!("v1.{}.{}", now_secs(), "cd".repeat(16));
        let seal = |key: [u8; 32]| {
            let sealer = SessionSealer {
                key,
                terminated: Mutex::new(HashMap::new()),
            };
            format!(
                "{body}.{}",
                URL_SAFE_NO_PAD.encode(sealer.mac(&body, "alice"))
            )
        };
        let sealer = SessionSealer::new(Some("secret"));
        let old = seal(Sha256::digest(b"secret").into());
        assert_eq!(
            sealer.verify(&old, "alice"),
            Err(SessionError::BadSignature)
        );
        let derived = seal(keys::derive(b"secret", KeyUse::SessionId));
        assert!(sealer.verify(&derived, "alice").is_ok());
        let request_state_key = seal(keys::derive(b"secret", KeyUse::RequestState));
        assert!(sealer.verify(&request_state_key, "alice").is_err());
    }

    #[test]
    fn forged_and_malformed_ids_fail() {
        let sealer = SessionSealer::new(Some("secret"));
        let id = sealer.mint("alice");
        let (body, _) = id.rsplit_once('.').unwrap();
        let tampered = format!("{}.{}", body.replacen("v1.", "v1.1", 1), "AAAA");
        assert!(sealer.verify(&tampered, "alice").is_err());
        for bad in ["", "x", "v1.1.2", "v2.1.2.3", "v1.x.2.AAAA", "v1.1.2.!!"] {
            assert_eq!(
                sealer.verify(bad, "alice"),
                Err(SessionError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn terminated_ids_are_refused() {
        let sealer = SessionSealer::new(Some("secret"));
        let id = sealer.mint("alice");
        let other = sealer.mint("alice");
        let session = sealer.verify(&id, "alice").unwrap();
        sealer.terminate(&session);
        assert_eq!(sealer.verify(&id, "alice"), Err(SessionError::Terminated));
        assert!(sealer.verify(&other, "alice").is_ok());
    }

    #[test]
    fn old_ids_expire() {
        let sealer = SessionSealer::new(Some("secret"));
        let issued = now_secs() - SESSION_MAX_AGE.as_secs() - 10;
        let body = format!("v1.{issued}.{}", "ab".repeat(16));
        let id = format!(
            "{body}.{}",
            URL_SAFE_NO_PAD.encode(sealer.mac(&body, "alice"))
        );
        assert_eq!(sealer.verify(&id, "alice"), Err(SessionError::Expired));
    }
}
