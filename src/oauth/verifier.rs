//! The OAuth side of authentication: a bearer value that is not a static token is validated
//! as an access token ([`super::token`]), mapped to a role through its scopes and to a Kasm
//! user ([`super::kasm_user`]), and becomes a [`Principal`] named `oauth:<sub>` (the prefix
//! keeps OAuth subjects apart from static token names, which share the principal namespace:
//! sessions, rate limits, audit). Refusals carry the challenge their status needs.

use std::sync::Arc;

use axum::http::HeaderValue;

use super::challenge;
use super::introspection::{IntrospectionError, Introspector};
use super::kasm_user::{KasmUserError, KasmUserResolver};
use super::keys::KeyCache;
use super::token::{self, TokenError};
use crate::config::OAuthSettings;
use crate::kasm::KasmApi;
use crate::policy::{OAUTH_PRINCIPAL_PREFIX, OAuthGrant, Principal, Role};

/// Why an OAuth token did not give a principal.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// 401 `invalid_token`.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// 403 `insufficient_scope`: the token grants no role at all.
    #[error("the token grants none of this server's scopes")]
    NoRole,
    /// 403: the token is valid but names no usable Kasm user.
    #[error(transparent)]
    KasmUser(KasmUserError),
    /// 503: Kasm could not be asked which user the token names.
    #[error(transparent)]
    Unavailable(KasmUserError),
    /// 503: the introspection endpoint could not answer for an opaque token.
    #[error("{0}")]
    IntrospectionUnavailable(String),
}

/// Validates OAuth access tokens for this resource.
pub struct OAuthVerifier {
    settings: Arc<OAuthSettings>,
    keys: KeyCache,
    introspection: Option<Introspector>,
    users: KasmUserResolver,
    metadata_url: String,
}

impl OAuthVerifier {
    /// `kasm` is needed when the Kasm user is looked up by username.
    pub fn new(settings: OAuthSettings, kasm: Option<Arc<dyn KasmApi>>) -> Result<Self, String> {
        if KasmUserResolver::needs_kasm(&settings.kasm_user) && kasm.is_none() {
            return Err(
                "oauth.kasm_username_claim needs a Kasm connection to look users up".into(),
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.http_timeout)
            .timeout(settings.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the OAuth HTTP client: {e}"))?;
        let settings = Arc::new(settings);
        let metadata_url = challenge::metadata_url(&settings.resource);
        Ok(OAuthVerifier {
            introspection: settings
                .introspection
                .clone()
                .map(|i| Introspector::new(http.clone(), i)),
            keys: KeyCache::new(http, settings.clone()),
            users: KasmUserResolver::new(
                settings.kasm_user.clone(),
                kasm,
                settings.kasm_user_cache,
            ),
            settings,
            metadata_url,
        })
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// The absolute URL of this resource's metadata document.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// Validate `token` and build its principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, Refusal> {
        let grant = match (
            token::validate(&self.settings, &self.keys, token).await,
            &self.introspection,
        ) {
            // Not a JWT: an opaque token, if an introspection endpoint is configured.
            (Err(TokenError::Malformed), Some(introspector)) => introspector
                .introspect(&self.settings, token)
                .await
                .map_err(|e| match e {
                    IntrospectionError::Token(e) => Refusal::Token(e),
                    IntrospectionError::Unavailable(why) => Refusal::IntrospectionUnavailable(
                        format!("cannot introspect the token: {why}"),
                    ),
                })?,
            (result, _) => result?,
        };
        let role = self
            .settings
            .role_for(&grant.scopes)
            .ok_or(Refusal::NoRole)?;
        let kasm_user_id = self.users.resolve(&grant).await.map_err(|e| match e {
            KasmUserError::Lookup(_) => Refusal::Unavailable(e),
            other => Refusal::KasmUser(other),
        })?;
        Ok(Principal {
            name: format!("{OAUTH_PRINCIPAL_PREFIX}{}", grant.subject),
            role,
            kasm_user_id,
            oauth: Some(OAuthGrant {
                client_id: grant.client_id,
                scopes: grant.scopes,
            }),
        })
    }

    /// The 401 challenge; `invalid` describes a refused token (none when none was sent).
    pub fn unauthorized(&self, invalid: Option<&str>) -> HeaderValue {
        challenge::unauthorized(
            &self.metadata_url,
            &self.settings.challenge_scopes.join(" "),
            invalid,
        )
    }

    /// The 403 step-up challenge for a call that needs `needed`: the scopes that grant it,
    /// plus the configured scopes the token already has (so the new token keeps them).
    pub fn insufficient(&self, needed: Role, held: &[String]) -> HeaderValue {
        let mut scopes: Vec<&str> = self
            .settings
            .scopes()
            .into_iter()
            .filter(|s| held.iter().any(|h| h == s))
            .collect();
        for s in self.settings.scopes_for(needed) {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        challenge::insufficient_scope(&self.metadata_url, &scopes.join(" "))
    }
}
