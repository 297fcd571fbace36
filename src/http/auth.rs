//! Bearer-token authentication. Static tokens are configured only as SHA-256 digests (parsed
//! once, as [`TokenDigest`]s, while the configuration loads); the presented token is hashed and
//! compared in constant time against every digest. A token that is not one of them is validated
//! as an OAuth access token when `[oauth]` is enabled ([`OAuthVerifier`]). The result is a
//! [`Principal`] request extension. Failures are 401 `{"error": …}` with `WWW-Authenticate`:
//! without OAuth a plain `Bearer realm="kasm-mcp"` (no metadata, which would make some clients
//! start an OAuth flow instead of sending the header); with OAuth the `resource_metadata`
//! challenge of RFC 9728.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::error::json_error;
use super::refuse::{Decide, Decision};
use crate::config::Config;
use crate::oauth::{OAuthVerifier, Refusal, challenge};
use crate::policy::{Principal, Role};
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
    /// `[oauth]` enabled: bearer values that are not static tokens are validated here.
    oauth: Option<Arc<OAuthVerifier>>,
}

impl Authenticator {
    /// From `auth.tokens` (digest, role, the principal's own Kasm user; which Kasm user a
    /// principal without one acts as is decided per call by `policy::acting_kasm_user`).
    pub fn from_config(config: &Config) -> Self {
        if config.auth.disabled {
            return Authenticator {
                tokens: Vec::new(),
                anonymous: Some(Principal::anonymous_admin(None)),
                oauth: None,
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
                    oauth: None,
                },
            })
            .collect();
        Authenticator {
            tokens,
            anonymous: None,
            oauth: None,
        }
    }

    /// Also accept OAuth access tokens; static tokens stay only if `oauth.static_tokens`.
    pub fn with_oauth(mut self, verifier: Arc<OAuthVerifier>) -> Self {
        if !verifier.settings().static_tokens {
            self.tokens.clear();
        }
        self.oauth = Some(verifier);
        self
    }

    /// The `WWW-Authenticate` value of a 401; `invalid` describes a refused token.
    fn challenge(&self, invalid: Option<&str>) -> HeaderValue {
        match &self.oauth {
            Some(oauth) => oauth.unauthorized(invalid),
            None => challenge::plain(),
        }
    }

    /// The static principal whose digest `token` matches.
    fn static_principal(&self, token: &str) -> Option<Principal> {
        // Compare against every digest so the time taken does not depend on which matched.
        // The token is hashed once, not once per entry.
        let presented = crate::tokens::TokenDigest::of(token);
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.tokens {
            if entry.digest.matches_digest(&presented) {
                found = Some(entry);
            }
        }
        found.map(|entry| entry.principal.clone())
    }

    /// Check an `Authorization` header value.
    pub fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Principal, AuthError> {
        if let Some(anonymous) = &self.anonymous {
            return Ok(anonymous.clone());
        }
        let token = bearer(authorization)?;
        self.static_principal(token).ok_or(AuthError::Invalid)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(authorization: Option<&HeaderValue>) -> Result<&str, AuthError> {
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
    Ok(token)
}

/// The check (in a [`RefuseLayer`](super::refuse::RefuseLayer)): authenticate, insert the
/// [`Principal`] extension, or answer 401 (403/503 for a valid OAuth token that grants no role
/// or names no usable Kasm user). Static tokens are decided in place; only a token that has to
/// be validated as an OAuth access token waits (JWKS, introspection).
impl Decide for Arc<Authenticator> {
    fn decide(&self, mut request: Request) -> Decision {
        match (
            &self.oauth,
            self.authenticate(request.headers().get(header::AUTHORIZATION)),
        ) {
            (_, Ok(principal)) => {
                request.extensions_mut().insert(principal);
                Decision::Pass(request)
            }
            (Some(oauth), Err(AuthError::Invalid)) => {
                let (auth, oauth) = (self.clone(), oauth.clone());
                Decision::Wait(Box::pin(async move {
                    let Ok(token) = bearer(request.headers().get(header::AUTHORIZATION)) else {
                        return Err(unauthorized(&auth, AuthError::Malformed.to_string(), None));
                    };
                    let principal = match oauth.verify(token).await {
                        Ok(principal) => principal,
                        Err(refusal) => return Err(refused(&auth, &oauth, refusal)),
                    };
                    request.extensions_mut().insert(principal);
                    Ok(request)
                }))
            }
            (_, Err(error)) => Decision::Refuse(unauthorized(self, error.to_string(), None)),
        }
    }
}

fn unauthorized(auth: &Authenticator, message: String, invalid: Option<&str>) -> Response {
    let mut response = json_error(StatusCode::UNAUTHORIZED, message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, auth.challenge(invalid));
    response
}

/// The answer to an OAuth token that gave no principal. The reason is logged (never the token).
fn refused(auth: &Authenticator, oauth: &OAuthVerifier, refusal: Refusal) -> Response {
    let reason = refusal.to_string();
    crate::audit::record_event(
        "oauth_refusal",
        "-",
        serde_json::json!({
            "decision": "deny",
            "reason": reason,
            "client_id": null,
            "scopes": null,
        }),
    );
    match refusal {
        Refusal::Token(_) => unauthorized(
            auth,
            format!("invalid bearer token: {reason}"),
            Some(&reason),
        ),
        Refusal::NoRole => {
            let mut response = json_error(StatusCode::FORBIDDEN, reason);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                oauth.insufficient(Role::Viewer, &[]),
            );
            response
        }
        Refusal::KasmUser(_) => json_error(StatusCode::FORBIDDEN, reason),
        Refusal::Unavailable(_) | Refusal::IntrospectionUnavailable(_) => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
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

    /// The status and `WWW-Authenticate` the layer answers for `authorization`, and the
    /// principal the service below it saw.
    async fn through_layer(
        authorization: Option<&str>,
    ) -> (StatusCode, Option<String>, Option<String>) {
        use axum::body::Body;
        let auth = Authenticator::from_config(&config(&[("alice", "tok-a", "viewer")]));
        let inner = tower::service_fn(|request: Request| async move {
            let name = request
                .extensions()
                .get::<Principal>()
                .map(|p| p.name.clone())
                .unwrap_or_default();
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(name)))
        });
        let mut request = Request::new(Body::empty());
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, header(value));
        }
        let (status, headers, body) =
            crate::http::refuse::respond(Arc::new(auth), inner, request).await;
        let challenge = headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let seen = (status == StatusCode::OK).then_some(body);
        (status, challenge, seen)
    }

    #[tokio::test]
    async fn the_layer_passes_the_principal_on_or_answers_401_with_a_challenge() {
        let (status, challenge, seen) = through_layer(Some("Bearer tok-a")).await;
        assert_eq!(
            (status, challenge, seen.as_deref()),
            (StatusCode::OK, None, Some("alice"))
        );
        for refused in [None, Some("Bearer wrong"), Some("Basic dG9rLWE=")] {
            let (status, challenge, seen) = through_layer(refused).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused:?}");
            assert_eq!(
                challenge.as_deref(),
                Some("Bearer realm=\"kasm-mcp\""),
                "{refused:?}"
            );
            assert_eq!(seen, None);
        }
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
