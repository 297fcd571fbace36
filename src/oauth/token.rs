//! JWT access-token validation: the header's `alg` must be one of the accepted asymmetric
//! algorithms (never `none`, never HMAC), the signature must verify with an issuer key from
//! the [`KeyCache`], `iss` must be the configured issuer, `aud` must name this server's
//! canonical URI (RFC 8707: a token minted for another resource is refused), and
//! `exp`/`nbf` are checked with the configured small leeway. The result is an
//! [`AccessGrant`]: who, through which client, with which scopes. Opaque tokens go to
//! [`super::introspection`] instead.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::{Map, Value};

use super::keys::KeyCache;
use crate::config::OAuthSettings;

/// A validated access token's content (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessGrant {
    /// `sub`.
    pub subject: String,
    /// `client_id` (RFC 9068), `azp` (OpenID) or `cid` (Okta).
    pub client_id: Option<String>,
    /// `scope` (space-separated) or `scp` (string or array, Entra ID / Okta).
    pub scopes: Vec<String>,
    /// Every claim, for the configured Kasm-user claim.
    pub claims: Map<String, Value>,
}

/// Why a token was refused (each becomes 401 `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT this server can read")]
    Malformed,
    #[error("the token's algorithm {0} is not accepted (only RS256, ES256, EdDSA as configured)")]
    Algorithm(String),
    #[error("the token is signed by a key the authorization server does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token was issued for another resource (audience)")]
    Audience,
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
    #[error("the authorization server says the token is not active")]
    Inactive,
}

fn from_jwt_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::Algorithm("mismatching the key".into())
        }
        ErrorKind::InvalidClaimFormat(c) => TokenError::Claims(c.clone()),
        _ => TokenError::Malformed,
    }
}

/// The audiences accepted: the canonical URI, with and without a trailing slash.
fn audiences(settings: &OAuthSettings) -> Vec<String> {
    let canonical = settings.resource.as_str().to_owned();
    let trimmed = canonical.trim_end_matches('/').to_owned();
    if trimmed == canonical {
        vec![canonical.clone(), format!("{canonical}/")]
    } else {
        vec![canonical, trimmed]
    }
}

/// Validate `token` (the bearer value) and return its grant.
pub async fn validate(
    settings: &OAuthSettings,
    keys: &KeyCache,
    token: &str,
) -> Result<AccessGrant, TokenError> {
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    if !settings.algorithms.contains(&header.alg) {
        return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let candidates = keys.candidates(header.kid.as_deref(), header.alg).await;
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey);
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = settings.leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_issuer(&[settings.issuer.as_str()]);
    validation.set_audience(&audiences(settings));
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let mut last = TokenError::Signature;
    for key in &candidates {
        match decode::<Map<String, Value>>(token, &key.key, &validation) {
            Ok(data) => return grant_from_claims(data.claims),
            Err(e) => {
                last = from_jwt_error(e.kind());
                if last != TokenError::Signature {
                    return Err(last);
                }
            }
        }
    }
    Err(last)
}

fn words(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The grant named by validated claims (JWT payload or introspection answer).
pub fn grant_from_claims(claims: Map<String, Value>) -> Result<AccessGrant, TokenError> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TokenError::MissingClaim("sub".into()))?
        .to_owned();
    let client_id = ["client_id", "azp", "cid"]
        .iter()
        .find_map(|c| claims.get(*c).and_then(Value::as_str))
        .map(str::to_owned);
    let mut scopes = words(claims.get("scope"));
    for s in words(claims.get("scp")) {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    Ok(AccessGrant {
        subject,
        client_id,
        scopes,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_come_from_scope_or_scp_in_either_shape() {
        let g = grant_from_claims(
            json!({"sub":"u","azp":"c","scope":"a b","scp":["b","c"]})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(g.scopes, vec!["a", "b", "c"]);
        assert_eq!(g.client_id.as_deref(), Some("c"));
        let none = grant_from_claims(json!({"sub":""}).as_object().cloned().unwrap());
        assert_eq!(none, Err(TokenError::MissingClaim("sub".into())));
    }
}
