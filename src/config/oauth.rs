//! The `[oauth]` configuration section (OAuth 2.1 resource server) and its parsed form.
//!
//! [`OAuthConfig`] is what the operator writes; [`OAuthConfig::parse`] turns it into
//! [`OAuthSettings`] (URLs parsed, algorithms and roles typed, scope table checked) or a
//! [`ConfigError`] that names the key, the value and the fix. Nothing here does I/O; the
//! resource server that uses the settings is `crate::oauth`.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::errors::{ConfigError, invalid};
use crate::policy::Role;

/// `[oauth]` as written in the configuration file (or `KASM_MCP_OAUTH__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Accept OAuth access tokens (and serve the protected-resource metadata).
    pub enabled: bool,
    /// The authorization server's issuer identifier: tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// This server's canonical URI as clients reach it (e.g. `https://mcp.example.com/mcp`):
    /// the audience tokens must be minted for (RFC 8707) and the metadata's `resource`.
    pub resource: Option<String>,
    /// Where the issuer's metadata is (RFC 8414 or OpenID discovery). Unset: tried at
    /// `<issuer>/.well-known/oauth-authorization-server` then `…/openid-configuration`.
    pub discovery_url: Option<String>,
    /// The issuer's JWKS URL. Unset: taken from the discovery document.
    pub jwks_uri: Option<String>,
    /// Signature algorithms accepted. Only RS256, ES256 and EdDSA may be named.
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// Timeout for every request to the authorization server.
    pub http_timeout_ms: u64,
    /// Fewest seconds between two JWKS fetches caused by an unknown `kid` (rate limit).
    pub jwks_min_refresh_s: u64,
    /// Cached keys are refetched after this many seconds (kept if the fetch fails).
    pub jwks_max_age_s: u64,
    /// Scope → role. A token's role is the highest role of its scopes.
    pub scope_roles: BTreeMap<String, String>,
    /// Scopes a 401 challenge asks for. Empty: the least scope that grants a role (viewer),
    /// so clients start with least privilege and step up (403 `insufficient_scope`) when a
    /// call needs more. Each must be a key of `scope_roles`.
    pub challenge_scopes: Vec<String>,
    /// Keep accepting `[[auth.tokens]]` static tokens beside OAuth tokens.
    pub static_tokens: bool,
    /// Claim holding the Kasm user id (32 hex) the principal acts as.
    pub kasm_user_id_claim: Option<String>,
    /// Claim holding a Kasm username (e.g. `email`, `preferred_username`), looked up with
    /// Kasm `get_user`. Exclusive with `kasm_user_id_claim`. Neither: `kasm.user_id`.
    pub kasm_username_claim: Option<String>,
    /// With neither claim, every OAuth principal acts as the one `kasm.user_id` and so can see
    /// and touch the others' sessions: required (`true`) to accept that, else start-up fails.
    pub shared_kasm_user: bool,
    /// Create the Kasm user named by `kasm_username_claim` when it does not exist.
    pub auto_create_kasm_user: bool,
    /// How long a username → Kasm user id lookup is cached.
    pub kasm_user_cache_s: u64,
    /// RFC 7662 endpoint for opaque (non-JWT) access tokens. Unset: opaque tokens are refused.
    pub introspection_endpoint: Option<String>,
    /// This server's client id at the introspection endpoint (HTTP Basic).
    pub introspection_client_id: Option<String>,
    /// Its client secret. A `SecretString`: redacted in `Debug`.
    pub introspection_client_secret: Option<SecretString>,
    /// Longest time an active introspection answer is reused (never past the token's `exp`).
    pub introspection_cache_s: u64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            enabled: false,
            issuer: None,
            resource: None,
            discovery_url: None,
            jwks_uri: None,
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            leeway_s: 30,
            http_timeout_ms: 5_000,
            jwks_min_refresh_s: 30,
            jwks_max_age_s: 3_600,
            scope_roles: default_scope_roles(),
            challenge_scopes: Vec::new(),
            static_tokens: true,
            kasm_user_id_claim: None,
            kasm_username_claim: None,
            shared_kasm_user: false,
            auto_create_kasm_user: false,
            kasm_user_cache_s: 300,
            introspection_endpoint: None,
            introspection_client_id: None,
            introspection_client_secret: None,
            introspection_cache_s: 60,
        }
    }
}

fn default_scope_roles() -> BTreeMap<String, String> {
    [
        ("kasm:read", "viewer"),
        ("kasm:operate", "operator"),
        ("kasm:admin", "admin"),
    ]
    .into_iter()
    .map(|(s, r)| (s.to_owned(), r.to_owned()))
    .collect()
}

/// Where the Kasm user a principal acts as comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KasmUserSource {
    /// `kasm.user_id` (or none).
    Default,
    /// This claim holds the Kasm user id.
    UserIdClaim(String),
    /// This claim holds a Kasm username, looked up (and maybe created).
    UsernameClaim { claim: String, auto_create: bool },
}

/// `[oauth]` parsed: everything the verifier and the metadata need, as types.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub issuer: String,
    pub resource: Url,
    pub discovery_url: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub http_timeout: Duration,
    pub jwks_min_refresh: Duration,
    pub jwks_max_age: Duration,
    /// (scope, role), in the configured order.
    pub scope_roles: Vec<(String, Role)>,
    /// The scopes of a 401 challenge (never empty).
    pub challenge_scopes: Vec<String>,
    pub static_tokens: bool,
    pub kasm_user: KasmUserSource,
    pub kasm_user_cache: Duration,
    pub introspection: Option<IntrospectionSettings>,
}

/// RFC 7662 introspection, parsed.
#[derive(Debug, Clone)]
pub struct IntrospectionSettings {
    pub endpoint: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub cache_ttl: Duration,
}

fn http_url(key: &'static str, value: &str) -> Result<Url, ConfigError> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(invalid(
            key,
            value,
            "use an absolute https:// URL (http:// only for loopback tests)",
        )),
    }
}

fn algorithm(name: &str) -> Result<Algorithm, ConfigError> {
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(invalid(
            "oauth.algorithms",
            other,
            "only RS256, ES256 and EdDSA are accepted (never `none` or an HMAC algorithm)",
        )),
    }
}

impl OAuthConfig {
    /// The `[oauth]` table of a TOML file (`demo --oauth FILE`); missing keys take defaults.
    pub fn from_toml_file(path: &std::path::Path) -> Result<OAuthConfig, String> {
        use figment::providers::{Format, Toml};
        if !path.is_file() {
            return Err(format!("{} is not a readable file", path.display()));
        }
        figment::Figment::from(Toml::file(path))
            .extract_inner::<OAuthConfig>("oauth")
            .map_err(|e| format!("{}: [oauth]: {e}", path.display()))
    }

    /// The parsed settings, `None` when OAuth is switched off.
    pub fn parse(&self) -> Result<Option<OAuthSettings>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let issuer = self.issuer.as_deref().map(str::trim).unwrap_or_default();
        if issuer.is_empty() {
            return Err(invalid(
                "oauth.issuer",
                "",
                "name the authorization server's issuer, exactly as its tokens' `iss` \
                 (e.g. https://keycloak.example.com/realms/kasm)",
            ));
        }
        http_url("oauth.issuer", issuer)?;
        let raw_resource = self.resource.as_deref().unwrap_or_default();
        let resource = http_url("oauth.resource", raw_resource).map_err(|_| {
            invalid(
                "oauth.resource",
                raw_resource,
                "use this server's public MCP URL, e.g. https://mcp.example.com/mcp: it is the \
                 audience tokens must be issued for",
            )
        })?;
        if resource.fragment().is_some() || resource.query().is_some() {
            return Err(invalid(
                "oauth.resource",
                raw_resource,
                "a resource URI has no query or fragment (RFC 8707)",
            ));
        }
        let discovery_url = self
            .discovery_url
            .as_deref()
            .map(|u| http_url("oauth.discovery_url", u))
            .transpose()?;
        let jwks_uri = self
            .jwks_uri
            .as_deref()
            .map(|u| http_url("oauth.jwks_uri", u))
            .transpose()?;
        if self.algorithms.is_empty() {
            return Err(invalid(
                "oauth.algorithms",
                "[]",
                "name at least one of RS256, ES256, EdDSA",
            ));
        }
        let algorithms = self
            .algorithms
            .iter()
            .map(|a| algorithm(a))
            .collect::<Result<Vec<_>, _>>()?;
        if self.http_timeout_ms == 0 {
            return Err(invalid(
                "oauth.http_timeout_ms",
                "0",
                "use a timeout greater than zero, e.g. 5000",
            ));
        }
        if self.leeway_s > 300 {
            return Err(invalid(
                "oauth.leeway_s",
                self.leeway_s.to_string(),
                "keep the clock-skew allowance small (at most 300 seconds)",
            ));
        }
        if self.jwks_max_age_s < self.jwks_min_refresh_s {
            return Err(invalid(
                "oauth.jwks_max_age_s",
                self.jwks_max_age_s.to_string(),
                format!(
                    "must be at least oauth.jwks_min_refresh_s ({})",
                    self.jwks_min_refresh_s
                ),
            ));
        }
        if self.scope_roles.is_empty() {
            return Err(invalid(
                "oauth.scope_roles",
                "{}",
                "map at least one scope to a role, e.g. \"kasm:read\" = \"viewer\"",
            ));
        }
        let mut scope_roles = Vec::with_capacity(self.scope_roles.len());
        for (scope, role) in &self.scope_roles {
            let valid_scope = !scope.is_empty()
                && scope
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
            if !valid_scope {
                return Err(invalid(
                    "oauth.scope_roles",
                    scope.as_str(),
                    "a scope is printable ASCII without spaces, quotes or backslashes (RFC 6749)",
                ));
            }
            let role: Role = role.parse().map_err(|fix: String| {
                invalid("oauth.scope_roles", format!("{scope} = {role}"), fix)
            })?;
            scope_roles.push((scope.clone(), role));
        }
        for scope in &self.challenge_scopes {
            if !self.scope_roles.contains_key(scope) {
                return Err(invalid(
                    "oauth.challenge_scopes",
                    scope.as_str(),
                    "name only scopes that are keys of oauth.scope_roles",
                ));
            }
        }
        let lowest = scope_roles.iter().map(|(_, r)| *r).min();
        let challenge_scopes = if self.challenge_scopes.is_empty() {
            scope_roles
                .iter()
                .filter(|(_, r)| Some(*r) == lowest)
                .map(|(s, _)| s.clone())
                .collect()
        } else {
            self.challenge_scopes.clone()
        };
        let kasm_user = match (&self.kasm_user_id_claim, &self.kasm_username_claim) {
            (Some(a), Some(b)) => {
                return Err(invalid(
                    "oauth.kasm_user_id_claim / oauth.kasm_username_claim",
                    format!("{a} / {b}"),
                    "set one of them: a claim that holds the Kasm user id, or one that holds \
                     a Kasm username to look up",
                ));
            }
            (Some(claim), None) => KasmUserSource::UserIdClaim(claim.clone()),
            (None, Some(claim)) => KasmUserSource::UsernameClaim {
                claim: claim.clone(),
                auto_create: self.auto_create_kasm_user,
            },
            (None, None) if self.shared_kasm_user => KasmUserSource::Default,
            (None, None) => {
                return Err(invalid(
                    "oauth.shared_kasm_user",
                    "false",
                    "without oauth.kasm_user_id_claim or oauth.kasm_username_claim every OAuth \
                     principal acts as the one kasm.user_id and can see and touch the others' \
                     sessions: set a claim that names each principal's Kasm user, or set \
                     oauth.shared_kasm_user = true to accept one shared Kasm user",
                ));
            }
        };
        if self.shared_kasm_user && !matches!(kasm_user, KasmUserSource::Default) {
            return Err(invalid(
                "oauth.shared_kasm_user",
                "true",
                "contradicts the claim that names each principal's Kasm user: remove one",
            ));
        }
        if self.auto_create_kasm_user && !matches!(kasm_user, KasmUserSource::UsernameClaim { .. })
        {
            return Err(invalid(
                "oauth.auto_create_kasm_user",
                "true",
                "needs oauth.kasm_username_claim (the username to create)",
            ));
        }
        let introspection = match (
            &self.introspection_endpoint,
            &self.introspection_client_id,
            &self.introspection_client_secret,
        ) {
            (None, None, None) => None,
            (Some(endpoint), Some(client_id), Some(secret)) => Some(IntrospectionSettings {
                endpoint: http_url("oauth.introspection_endpoint", endpoint)?,
                client_id: client_id.clone(),
                client_secret: secret.clone(),
                cache_ttl: Duration::from_secs(self.introspection_cache_s),
            }),
            _ => {
                return Err(invalid(
                    "oauth.introspection_endpoint / _client_id / _client_secret",
                    self.introspection_endpoint.clone().unwrap_or_default(),
                    "set all three (the endpoint and this server's client credentials there) \
                     or none",
                ));
            }
        };
        Ok(Some(OAuthSettings {
            issuer: issuer.to_owned(),
            resource,
            discovery_url,
            jwks_uri,
            algorithms,
            leeway: Duration::from_secs(self.leeway_s),
            http_timeout: Duration::from_millis(self.http_timeout_ms),
            jwks_min_refresh: Duration::from_secs(self.jwks_min_refresh_s),
            jwks_max_age: Duration::from_secs(self.jwks_max_age_s),
            scope_roles,
            challenge_scopes,
            static_tokens: self.static_tokens,
            kasm_user,
            kasm_user_cache: Duration::from_secs(self.kasm_user_cache_s),
            introspection,
        }))
    }
}

impl OAuthSettings {
    /// Every configured scope, in order (the metadata's `scopes_supported`).
    pub fn scopes(&self) -> Vec<&str> {
        self.scope_roles.iter().map(|(s, _)| s.as_str()).collect()
    }

    /// The highest role granted by any of `scopes`, if any.
    pub fn role_for(&self, scopes: &[String]) -> Option<Role> {
        self.scope_roles
            .iter()
            .filter(|(s, _)| scopes.iter().any(|have| have == s))
            .map(|(_, r)| *r)
            .max()
    }

    /// The scopes that grant at least `role`, lowest such role first (a step-up asks for
    /// the least that is enough).
    pub fn scopes_for(&self, role: Role) -> Vec<&str> {
        let Some(least) = self
            .scope_roles
            .iter()
            .map(|(_, r)| *r)
            .filter(|r| *r >= role)
            .min()
        else {
            return Vec::new();
        };
        self.scope_roles
            .iter()
            .filter(|(_, r)| *r == least)
            .map(|(s, _)| s.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(e: ConfigError) -> &'static str {
        match e {
            ConfigError::Invalid { key, .. } => key,
            ConfigError::Load(_) => "",
        }
    }

    fn enabled() -> OAuthConfig {
        OAuthConfig {
            enabled: true,
            issuer: Some("https://idp.example.com/realms/kasm".into()),
            resource: Some("https://mcp.example.com/mcp".into()),
            shared_kasm_user: true,
            ..OAuthConfig::default()
        }
    }

    #[test]
    fn one_shared_kasm_user_must_be_chosen_explicitly() {
        let mut c = enabled();
        c.shared_kasm_user = false;
        let e = c.parse().unwrap_err();
        assert!(e.to_string().contains("kasm_username_claim"), "{e}");
        assert_eq!(key(e), "oauth.shared_kasm_user");
        c.kasm_username_claim = Some("email".into());
        assert!(c.parse().is_ok());
        c.shared_kasm_user = true;
        assert_eq!(key(c.parse().unwrap_err()), "oauth.shared_kasm_user");
    }

    #[test]
    fn off_by_default_and_parses_when_complete() {
        assert!(OAuthConfig::default().parse().unwrap().is_none());
        let s = enabled().parse().unwrap().unwrap();
        assert_eq!(s.resource.as_str(), "https://mcp.example.com/mcp");
        assert_eq!(s.scopes(), vec!["kasm:admin", "kasm:operate", "kasm:read"]);
        assert_eq!(s.role_for(&["kasm:read".into()]), Some(Role::Viewer));
        assert_eq!(
            s.role_for(&["kasm:read".into(), "kasm:operate".into()]),
            Some(Role::Operator)
        );
        assert_eq!(s.role_for(&["openid".into()]), None);
        assert_eq!(s.scopes_for(Role::Operator), vec!["kasm:operate"]);
        assert_eq!(s.scopes_for(Role::Viewer), vec!["kasm:read"]);
        assert_eq!(
            s.challenge_scopes,
            vec!["kasm:read"],
            "least privilege first"
        );
        let mut c = enabled();
        c.challenge_scopes = vec!["kasm:read".into(), "kasm:operate".into()];
        assert_eq!(c.parse().unwrap().unwrap().challenge_scopes.len(), 2);
        c.challenge_scopes = vec!["kasm:everything".into()];
        assert_eq!(key(c.parse().unwrap_err()), "oauth.challenge_scopes");
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = enabled();
        c.issuer = None;
        assert_eq!(key(c.parse().unwrap_err()), "oauth.issuer");
        let mut c = enabled();
        c.resource = Some("/mcp".into());
        assert_eq!(key(c.parse().unwrap_err()), "oauth.resource");
        for alg in ["none", "HS256"] {
            let mut c = enabled();
            c.algorithms = vec![alg.into()];
            let e = c.parse().unwrap_err();
            assert!(e.to_string().contains("never"), "{e}");
            assert_eq!(key(e), "oauth.algorithms");
        }
        let mut c = enabled();
        c.scope_roles.insert("kasm:x".into(), "root".into());
        assert_eq!(key(c.parse().unwrap_err()), "oauth.scope_roles");
        let mut c = enabled();
        c.kasm_user_id_claim = Some("kasm_uid".into());
        c.kasm_username_claim = Some("email".into());
        assert!(c.parse().is_err());
        let mut c = enabled();
        c.auto_create_kasm_user = true;
        assert_eq!(key(c.parse().unwrap_err()), "oauth.auto_create_kasm_user");
        let mut c = enabled();
        c.introspection_endpoint = Some("https://idp.example.com/introspect".into());
        assert!(key(c.parse().unwrap_err()).starts_with("oauth.introspection"));
        c.introspection_client_id = Some("kasm-mcp".into());
        c.introspection_client_secret = Some("s3cret-introspection".to_owned().into());
        let s = c.parse().unwrap().unwrap();
        assert!(s.introspection.is_some());
        assert!(
            !format!("{c:?} {s:?}").contains("s3cret"),
            "secret redacted"
        );
    }
}
