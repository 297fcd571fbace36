//! RFC 7662 token introspection, for authorization servers that issue opaque (non-JWT) access
//! tokens. The token goes only to its own issuer's introspection endpoint (with this server's
//! client credentials), never anywhere else. An active answer must name this resource in
//! `aud` (RFC 8707: a token for another resource is refused even when active) and, if it
//! names an issuer, the configured one. Positive answers are cached under the token's SHA-256
//! (never the token) until `oauth.introspection_cache_s` or the token's `exp`, whichever is
//! first; inactive answers are not cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::token::{AccessGrant, TokenError, grant_from_claims};
use crate::config::{IntrospectionSettings, OAuthSettings};

/// Most cached introspection results; the cache is emptied when full (cheap and bounded).
const MAX_CACHED: usize = 10_000;

/// Why introspection gave no grant.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the token introspection endpoint failed: {0}")]
    Unavailable(String),
}

/// Introspects opaque tokens, with a cache.
pub struct Introspector {
    http: reqwest::Client,
    settings: IntrospectionSettings,
    cache: Mutex<HashMap<[u8; 32], (AccessGrant, Instant)>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Introspector {
    pub fn new(http: reqwest::Client, settings: IntrospectionSettings) -> Self {
        Introspector {
            http,
            settings,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The grant of an opaque `token`.
    pub async fn introspect(
        &self,
        oauth: &OAuthSettings,
        token: &str,
    ) -> Result<AccessGrant, IntrospectionError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(grant) = self.cached(&key) {
            return Ok(grant);
        }
        let response = self
            .http
            .post(self.settings.endpoint.clone())
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.expose_secret()),
            )
            .header("accept", "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| IntrospectionError::Unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(IntrospectionError::Unavailable(format!(
                "HTTP {} (check oauth.introspection_client_id and _secret)",
                response.status().as_u16()
            )));
        }
        let claims: Map<String, Value> = response
            .json()
            .await
            .map_err(|e| IntrospectionError::Unavailable(format!("not JSON: {e}")))?;
        let (grant, expires) = check(oauth, claims)?;
        let ttl = expires
            .map(|exp| Duration::from_secs(exp.saturating_sub(unix_now())))
            .map_or(self.settings.cache_ttl, |left| {
                left.min(self.settings.cache_ttl)
            });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, (grant.clone(), Instant::now() + ttl));
        Ok(grant)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<AccessGrant> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(grant, _)| grant.clone())
    }
}

/// An introspection answer as a grant and its `exp`, or why it is refused.
fn check(
    oauth: &OAuthSettings,
    claims: Map<String, Value>,
) -> Result<(AccessGrant, Option<u64>), TokenError> {
    if claims.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::Inactive);
    }
    if let Some(iss) = claims.get("iss")
        && iss.as_str() != Some(oauth.issuer.as_str())
    {
        return Err(TokenError::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let resource = oauth.resource.as_str();
    let ours =
        |a: &&str| *a == resource || a.trim_end_matches('/') == resource.trim_end_matches('/');
    if !audiences.iter().any(ours) {
        return Err(TokenError::Audience);
    }
    let exp = claims.get("exp").and_then(Value::as_u64);
    let leeway = oauth.leeway.as_secs();
    if exp.is_some_and(|exp| exp.saturating_add(leeway) < unix_now()) {
        return Err(TokenError::Expired);
    }
    if claims
        .get("nbf")
        .and_then(Value::as_u64)
        .is_some_and(|nbf| nbf > unix_now().saturating_add(leeway))
    {
        return Err(TokenError::NotYetValid);
    }
    Ok((grant_from_claims(claims)?, exp))
}
