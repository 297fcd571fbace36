//! Bearer-token authentication. Tokens are configured only as SHA-256 digests (parsed once, as
//! [`TokenDigest`]s, while the configuration loads); the presented token is hashed and compared
//! in constant time against every digest. The result is
//! a [`Principal`] request extension. Failures are 401 `{"error": …}` with no OAuth metadata or
//! challenge (which would make some clients start an OAuth flow instead of sending the header).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::json_error;
use crate::config::Config;
use crate::policy::Principal;
use crate::tokens::TokenDigest;

struct TokenEntry {
    digest: TokenDigest,
    principal: Principal,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("malformed Authorization header: use `Authorization: Bearer <token>`")]
    Malformed,
    #[error("invalid bearer token")]
    Invalid,
}

/// The configured principals.
pub struct Authenticator {
    tokens: Vec<TokenEntry>,
    /// `auth.disabled`: everyone is this principal (config validation allows it on loopback only).
    anonymous: Option<Principal>,
}

impl Authenticator {
    /// From `auth.tokens` (digest, role, the principal's own Kasm user; which Kasm user a
    /// principal without one acts as is decided per call by `policy::acting_kasm_user`).
    pub fn from_config(config: &Config) -> Self {
        if config.auth.disabled {
            return Authenticator {
                tokens: Vec::new(),
                anonymous: Some(Principal::anonymous_admin(None)),
            };
        }
        let tokens = config
            .auth
            .tokens
            .iter()
            .map(|token| TokenEntry {
                digest: token.sha256.clone(),
                principal: Principal {
                    name: token.name.clone(),
                    role: token.role,
                    kasm_user_id: token.kasm_user_id.clone(),
                },
            })
            .collect();
        Authenticator {
            tokens,
            anonymous: None,
        }
    }

    /// Check an `Authorization` header value.
    pub fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Principal, AuthError> {
        if let Some(anonymous) = &self.anonymous {
            return Ok(anonymous.clone());
        }
        let value = authorization.ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Malformed);
        }
        // Compare against every digest so the time taken does not depend on which matched.
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.tokens {
            if entry.digest.matches(token) {
                found = Some(entry);
            }
        }
        found
            .map(|entry| entry.principal.clone())
            .ok_or(AuthError::Invalid)
    }
}

/// Middleware: authenticate, insert the [`Principal`] extension, or answer 401.
pub async fn require_bearer(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.authenticate(request.headers().get(header::AUTHORIZATION)) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => json_error(StatusCode::UNAUTHORIZED, error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;
    use crate::policy::Role;
    use crate::tokens::sha256_hex;

    fn config(tokens: &[(&str, &str, &str)]) -> Config {
        let mut c = Config::default();
        c.kasm.user_id = Some("0123456789abcdef0123456789abcdef".into());
        c.auth.tokens = tokens
            .iter()
            .map(|(name, token, role)| TokenConfig {
                name: name.to_string(),
                sha256: sha256_hex(token).parse().unwrap(),
                role: role.parse().unwrap(),
                kasm_user_id: None,
            })
            .collect();
        c
    }

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn right_token_gives_its_principal() {
        let auth = Authenticator::from_config(&config(&[
            ("alice", "tok-a", "viewer"),
            ("bob", "tok-b", "admin"),
        ]));
        let p = auth.authenticate(Some(&header("Bearer tok-b"))).unwrap();
        assert_eq!(p.name, "bob");
        assert_eq!(p.role, Role::Admin);
        assert_eq!(p.kasm_user_id, None, "the principal's own Kasm user only");
        let p = auth.authenticate(Some(&header("bearer  tok-a "))).unwrap();
        assert_eq!(p.name, "alice");
    }

    #[test]
    fn wrong_missing_and_malformed_tokens_fail() {
        let auth = Authenticator::from_config(&config(&[("alice", "tok-a", "viewer")]));
        assert_eq!(auth.authenticate(None), Err(AuthError::Missing));
        assert_eq!(
            auth.authenticate(Some(&header("Bearer tok-b"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.authenticate(Some(&header("Basic dG9rLWE="))),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            auth.authenticate(Some(&header("Bearer "))),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            auth.authenticate(Some(&header("tok-a"))),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn disabled_auth_is_anonymous_admin() {
        let mut c = config(&[]);
        c.auth.disabled = true;
        let auth = Authenticator::from_config(&c);
        let p = auth.authenticate(None).unwrap();
        assert_eq!(p.role, Role::Admin);
        assert_eq!(p.name, "anonymous");
    }
}
