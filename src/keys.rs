//! Keys derived from the configured `server.session_secret` with HKDF-SHA256 (RFC 5869), one
//! label per use: the session-id sealing key and the 2026-07-28 `requestState` sealing key
//! never equal each other or the secret itself, and every replica (and a restarted process)
//! given the same secret derives the same keys. Without a secret each key is random per
//! process, so sealed values do not survive a restart.

use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// What a derived key is for; each has its own HKDF `info` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// HMAC of Streamable HTTP session ids (`transport::session`).
    SessionId,
    /// HMAC of 2026-07-28 `requestState` values (`mcp::mrtr`).
    RequestState,
}

impl KeyUse {
    fn label(self) -> &'static [u8] {
        match self {
            KeyUse::SessionId => b"kasm-mcp/session-id/v1",
            KeyUse::RequestState => b"kasm-mcp/request-state/v1",
        }
    }
}

/// Salt of the extract step: fixed, so the same secret gives the same keys everywhere.
const SALT: &[u8] = b"kasm-mcp server.session_secret";

/// The 32-byte key for `use_` derived from `secret`.
pub fn derive(secret: &[u8], use_: KeyUse) -> [u8; 32] {
    let mut key = [0u8; 32];
    // HKDF-SHA256 can expand up to 255 × 32 bytes: 32 never fails.
    if Hkdf::<Sha256>::new(Some(SALT), secret)
        .expand(use_.label(), &mut key)
        .is_err()
    {
        unreachable!("HKDF-SHA256 expands 32 bytes");
    }
    key
}

/// [`derive`] from the configured secret, or a random key when none is configured.
pub fn from_secret(secret: Option<&SecretString>, use_: KeyUse) -> [u8; 32] {
    match secret {
        Some(secret) => derive(secret.expose_secret().as_bytes(), use_),
        None => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            key
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_per_secret_and_distinct_per_use() {
        let a = derive(b"secret", KeyUse::SessionId);
        assert_eq!(a, derive(b"secret", KeyUse::SessionId));
        assert_ne!(a, derive(b"secret", KeyUse::RequestState));
        assert_ne!(a, derive(b"other", KeyUse::SessionId));
        // Not the old raw SHA-256 of the secret.
        let raw: [u8; 32] = <Sha256 as sha2::Digest>::digest(b"secret").into();
        assert_ne!(a, raw);
        let s = SecretString::from("secret".to_string());
        assert_eq!(
            from_secret(Some(&s), KeyUse::RequestState),
            derive(b"secret", KeyUse::RequestState)
        );
        assert_ne!(
            from_secret(None, KeyUse::SessionId),
            from_secret(None, KeyUse::SessionId)
        );
    }
}
