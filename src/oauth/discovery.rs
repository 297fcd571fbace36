//! Finding the authorization server's signing keys: its metadata document (RFC 8414
//! `/.well-known/oauth-authorization-server`, or OpenID `/.well-known/openid-configuration`)
//! names `jwks_uri`; the JWKS there is parsed into verification keys. Every request has the
//! configured timeout; nothing here caches (that is [`super::keys`]).

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;
use url::Url;

/// Why the keys could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("GET {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not the expected JSON document: {why}")]
    Document { url: String, why: String },
    #[error(
        "no metadata found for issuer {issuer} (tried {tried}); set oauth.discovery_url or oauth.jwks_uri"
    )]
    NoMetadata { issuer: String, tried: String },
}

/// One verification key from the JWKS.
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: Option<String>,
    /// The algorithm the key is for: its `alg`, or the only one of ours its type allows.
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

async fn get_json(http: &reqwest::Client, url: &Url) -> Result<Value, DiscoveryError> {
    let response = http
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|source| DiscoveryError::Http {
            url: url.to_string(),
            source,
        })?;
    if !response.status().is_success() {
        return Err(DiscoveryError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    response
        .json::<Value>()
        .await
        .map_err(|e| DiscoveryError::Document {
            url: url.to_string(),
            why: e.to_string(),
        })
}

/// The metadata URLs to try for `issuer`: RFC 8414 inserts the well-known segment before the
/// issuer's path; OpenID appends it. Both forms are tried, RFC 8414 first.
pub fn metadata_urls(issuer: &str) -> Vec<Url> {
    let Ok(base) = Url::parse(issuer) else {
        return Vec::new();
    };
    let path = base.path().trim_end_matches('/').to_owned();
    let mut urls = Vec::new();
    for (well_known, inserted) in [
        ("oauth-authorization-server", true),
        ("openid-configuration", false),
        ("openid-configuration", true),
    ] {
        let mut url = base.clone();
        let new_path = if inserted {
            format!("/.well-known/{well_known}{path}")
        } else {
            format!("{path}/.well-known/{well_known}")
        };
        url.set_path(&new_path);
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}

/// The JWKS URL: configured, or from the first metadata document that names it and whose
/// `issuer` matches (RFC 8414 §3.3: a document for another issuer must not be used).
pub async fn jwks_uri(
    http: &reqwest::Client,
    issuer: &str,
    discovery_url: Option<&Url>,
) -> Result<Url, DiscoveryError> {
    let candidates = match discovery_url {
        Some(url) => vec![url.clone()],
        None => metadata_urls(issuer),
    };
    let mut last = None;
    for url in &candidates {
        match get_json(http, url).await {
            Ok(doc) => {
                let named = doc.get("issuer").and_then(Value::as_str);
                if named != Some(issuer) {
                    return Err(DiscoveryError::Document {
                        url: url.to_string(),
                        why: format!(
                            "its issuer is {named:?}, not {issuer:?} (oauth.issuer must be exact)"
                        ),
                    });
                }
                let jwks = doc.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| {
                    DiscoveryError::Document {
                        url: url.to_string(),
                        why: "it has no jwks_uri".into(),
                    }
                })?;
                return Url::parse(jwks).map_err(|e| DiscoveryError::Document {
                    url: url.to_string(),
                    why: format!("jwks_uri {jwks:?}: {e}"),
                });
            }
            Err(e @ DiscoveryError::Http { .. }) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(DiscoveryError::Status { .. }) | None => Err(DiscoveryError::NoMetadata {
            issuer: issuer.to_owned(),
            tried: candidates
                .iter()
                .map(Url::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        }),
        Some(other) => Err(other),
    }
}

/// Fetch and parse the JWKS: only signature keys of the accepted algorithms are kept
/// (symmetric `oct` keys never are: no HMAC with a published key).
pub async fn fetch_keys(
    http: &reqwest::Client,
    jwks_uri: &Url,
    accepted: &[Algorithm],
) -> Result<Vec<VerifyKey>, DiscoveryError> {
    let doc = get_json(http, jwks_uri).await?;
    let keys =
        doc.get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| DiscoveryError::Document {
                url: jwks_uri.to_string(),
                why: "no `keys` array".into(),
            })?;
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter_map(|jwk| verify_key(&jwk, accepted))
        .collect())
}

fn algorithm_named(name: &str) -> Option<Algorithm> {
    name.parse::<Algorithm>().ok()
}

/// A JWK as a verification key, or `None` when it is not one we may use.
pub fn verify_key(jwk: &Jwk, accepted: &[Algorithm]) -> Option<VerifyKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[Algorithm::RS256],
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            &[Algorithm::ES256]
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        _ => return None,
    };
    let declared = jwk
        .common
        .key_algorithm
        .map(|a| algorithm_named(&a.to_string()));
    let algorithms: Vec<Algorithm> = match declared {
        Some(Some(alg)) if by_type.contains(&alg) => vec![alg],
        Some(_) => return None,
        None => by_type.to_vec(),
    }
    .into_iter()
    .filter(|a| accepted.contains(a))
    .collect();
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    if key.family() == AlgorithmFamily::Hmac {
        return None;
    }
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_cover_both_conventions() {
        let urls: Vec<String> = metadata_urls("https://idp.example.com/realms/kasm")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            vec![
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/kasm",
                "https://idp.example.com/realms/kasm/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/openid-configuration/realms/kasm",
            ]
        );
        let root: Vec<String> = metadata_urls("http://127.0.0.1:9/")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            root,
            vec![
                "http://127.0.0.1:9/.well-known/oauth-authorization-server",
                "http://127.0.0.1:9/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn symmetric_and_foreign_keys_are_dropped() {
        let all = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
        let oct: Jwk = serde_json::from_value(serde_json::json!(
            {"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"h"}))
        .unwrap();
        assert!(verify_key(&oct, &all).is_none());
        let ed: Jwk = serde_json::from_value(serde_json::json!(
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"e"}))
        .unwrap();
        assert_eq!(
            verify_key(&ed, &all).unwrap().algorithms,
            vec![Algorithm::EdDSA]
        );
        assert!(verify_key(&ed, &[Algorithm::RS256]).is_none());
        let ed_enc: Jwk = serde_json::from_value(serde_json::json!(
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc"}))
        .unwrap();
        assert!(verify_key(&ed_enc, &all).is_none());
    }
}
