//! Which Kasm user an OAuth principal has as its own: none (then `policy::acting_kasm_user`
//! falls back to `kasm.user_id`, as for static tokens), the Kasm user id in a configured claim, or the Kasm user whose username is in a configured claim (`email`,
//! `preferred_username`), looked up with `get_user` and cached — optionally created on first
//! use. Only the claim value goes to Kasm, never the token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::token::AccessGrant;
use crate::config::KasmUserSource;
use crate::kasm::{KasmApi, KasmError, NewUser, UserRef, normalize_id};

/// Why no Kasm user could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum KasmUserError {
    #[error("the token lacks the {0} claim that names the Kasm user")]
    MissingClaim(String),
    #[error("the {claim} claim is not a Kasm user id (32 hex digits)")]
    NotAnId { claim: String },
    #[error("no Kasm user is named by the token's {claim} claim, and auto-creation is off")]
    Unknown { claim: String },
    #[error("cannot look the Kasm user up: {0}")]
    Lookup(#[source] KasmError),
}

/// Resolves and caches the Kasm user of a grant.
pub struct KasmUserResolver {
    source: KasmUserSource,
    kasm: Option<Arc<dyn KasmApi>>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl KasmUserResolver {
    pub fn new(source: KasmUserSource, kasm: Option<Arc<dyn KasmApi>>, ttl: Duration) -> Self {
        KasmUserResolver {
            source,
            kasm,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this source needs a Kasm client (username lookups do).
    pub fn needs_kasm(source: &KasmUserSource) -> bool {
        matches!(source, KasmUserSource::UsernameClaim { .. })
    }

    /// The Kasm user id `grant` acts as.
    pub async fn resolve(&self, grant: &AccessGrant) -> Result<Option<String>, KasmUserError> {
        let claim_value = |claim: &str| {
            grant
                .claims
                .get(claim)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| KasmUserError::MissingClaim(claim.to_owned()))
        };
        match &self.source {
            KasmUserSource::Default => Ok(None),
            KasmUserSource::UserIdClaim(claim) => {
                let value = claim_value(claim)?;
                normalize_id(claim, &value)
                    .map(Some)
                    .map_err(|_| KasmUserError::NotAnId {
                        claim: claim.clone(),
                    })
            }
            KasmUserSource::UsernameClaim { claim, auto_create } => {
                let username = claim_value(claim)?;
                if let Some(id) = self.cached(&username) {
                    return Ok(Some(id));
                }
                let id = self.lookup(claim, &username, *auto_create).await?;
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(username, (id.clone(), Instant::now()));
                Ok(Some(id))
            }
        }
    }

    fn cached(&self, username: &str) -> Option<String> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(username)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(id, _)| id.clone())
    }

    async fn lookup(
        &self,
        claim: &str,
        username: &str,
        auto_create: bool,
    ) -> Result<String, KasmUserError> {
        let Some(kasm) = &self.kasm else {
            return Err(KasmUserError::Unknown {
                claim: claim.to_owned(),
            });
        };
        match kasm.get_user(&UserRef::Username(username.to_owned())).await {
            Ok(user) => Ok(user.user_id),
            Err(KasmError::NotFound { .. } | KasmError::InvalidRequest { .. }) if auto_create => {
                let created = kasm
                    .create_user(&NewUser {
                        username: username.to_owned(),
                        ..NewUser::default()
                    })
                    .await
                    .map_err(KasmUserError::Lookup)?;
                crate::audit::record_event(
                    "kasm_user_created",
                    "-",
                    serde_json::json!({
                        "decision": "allow",
                        "reason": "Kasm user created for an OAuth principal",
                        "kasm_user_id": created.user_id,
                        "claim": claim,
                    }),
                );
                Ok(created.user_id)
            }
            Err(KasmError::NotFound { .. } | KasmError::InvalidRequest { .. }) => {
                Err(KasmUserError::Unknown {
                    claim: claim.to_owned(),
                })
            }
            Err(other) => Err(KasmUserError::Lookup(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(claims: Value) -> AccessGrant {
        AccessGrant {
            subject: "alice".into(),
            client_id: None,
            scopes: Vec::new(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    fn resolver(source: KasmUserSource) -> KasmUserResolver {
        KasmUserResolver::new(source, None, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn default_and_user_id_claim() {
        let r = resolver(KasmUserSource::Default);
        assert_eq!(r.resolve(&grant(json!({}))).await.unwrap(), None);
        let r = resolver(KasmUserSource::UserIdClaim("kasm_uid".into()));
        let id = r
            .resolve(&grant(
                json!({"kasm_uid": "4BBB6998-064A-4D1E-A468-5F3CDD05FEB4"}),
            ))
            .await
            .unwrap();
        assert_eq!(id.as_deref(), Some("4bbb6998064a4d1ea4685f3cdd05feb4"));
        assert!(matches!(
            r.resolve(&grant(json!({"kasm_uid": "bob"}))).await,
            Err(KasmUserError::NotAnId { .. })
        ));
        assert!(matches!(
            r.resolve(&grant(json!({}))).await,
            Err(KasmUserError::MissingClaim(c)) if c == "kasm_uid"
        ));
    }
}
