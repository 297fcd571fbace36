//! The JWKS cache: keys are fetched on first use, refetched when older than
//! `oauth.jwks_max_age_s` or when a token names an unknown `kid` — at most once per
//! `oauth.jwks_min_refresh_s`, so forged `kid`s cannot make this server hammer the
//! authorization server. A failed fetch keeps the cached keys: tokens signed by known keys
//! keep working while the authorization server is down.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use jsonwebtoken::Algorithm;
use url::Url;

use super::discovery::{self, DiscoveryError, VerifyKey};
use crate::config::OAuthSettings;

#[derive(Default)]
struct Cached {
    keys: Arc<Vec<VerifyKey>>,
    jwks_uri: Option<Url>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// The issuer's verification keys, cached.
pub struct KeyCache {
    http: reqwest::Client,
    settings: Arc<OAuthSettings>,
    cached: RwLock<Cached>,
    /// Serialises refreshes: concurrent misses wait for one fetch instead of each fetching.
    refreshing: tokio::sync::Mutex<()>,
}

impl KeyCache {
    pub fn new(http: reqwest::Client, settings: Arc<OAuthSettings>) -> Self {
        let jwks_uri = settings.jwks_uri.clone();
        KeyCache {
            http,
            settings,
            cached: RwLock::new(Cached {
                jwks_uri,
                ..Cached::default()
            }),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> (Arc<Vec<VerifyKey>>, bool, Option<Instant>) {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        let stale = cached
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.settings.jwks_max_age);
        (cached.keys.clone(), stale, cached.last_attempt)
    }

    /// Keys that may verify a token with this header `kid` and `alg`. Refreshes when the
    /// cache has none (or is old) and the rate limit allows.
    pub async fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<VerifyKey> {
        let (keys, stale, _) = self.snapshot();
        let found = matching(&keys, kid, alg);
        if !found.is_empty() && !stale {
            return found;
        }
        let _one_at_a_time = self.refreshing.lock().await;
        let (keys, stale, last_attempt) = self.snapshot();
        let found = matching(&keys, kid, alg);
        if !found.is_empty() && !stale {
            return found;
        }
        let allowed = last_attempt.is_none_or(|t| t.elapsed() >= self.settings.jwks_min_refresh);
        if !allowed {
            return found;
        }
        if let Err(error) = self.refresh().await {
            tracing::warn!(
                error = %error,
                cached_keys = keys.len(),
                "cannot refresh the OAuth signing keys; using the cached ones"
            );
        }
        let (keys, _, _) = self.snapshot();
        matching(&keys, kid, alg)
    }

    async fn refresh(&self) -> Result<(), DiscoveryError> {
        let known_uri = {
            let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
            cached.last_attempt = Some(Instant::now());
            cached.jwks_uri.clone()
        };
        let jwks_uri = match known_uri {
            Some(uri) => uri,
            None => {
                let uri = discovery::jwks_uri(
                    &self.http,
                    &self.settings.issuer,
                    self.settings.discovery_url.as_ref(),
                )
                .await?;
                self.cached
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .jwks_uri = Some(uri.clone());
                uri
            }
        };
        let keys = discovery::fetch_keys(&self.http, &jwks_uri, &self.settings.algorithms).await?;
        tracing::info!(jwks_uri = %jwks_uri, keys = keys.len(), "OAuth signing keys fetched");
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        cached.keys = Arc::new(keys);
        cached.fetched_at = Some(Instant::now());
        Ok(())
    }
}

/// The keys for `kid` (all keys of the algorithm when the token names none).
fn matching(keys: &[VerifyKey], kid: Option<&str>, alg: Algorithm) -> Vec<VerifyKey> {
    keys.iter()
        .filter(|k| k.algorithms.contains(&alg))
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .cloned()
        .collect()
}
