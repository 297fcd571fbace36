//! `[auth]`: the bearer-token principals (name, SHA-256 digest, role, own Kasm user) and the
//! loopback-only switch that turns authentication off. Digests and roles are parsed while
//! loading: a bad one never gets past deserialisation.

use serde::Deserialize;

use super::errors::{ConfigError, invalid};
use super::kasm::is_kasm_uuid;
use crate::policy::{OAUTH_PRINCIPAL_PREFIX, Role};
use crate::tokens::TokenDigest;

/// Bearer-token principals.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub tokens: Vec<TokenConfig>,
    /// Serve without authentication. Refused unless the listener is on loopback
    /// (used for the MCP conformance suite, which cannot send a token).
    pub disabled: bool,
}

/// One named token, stored only as its SHA-256 hex digest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub sha256: TokenDigest,
    #[serde(default = "default_role")]
    pub role: Role,
    /// Kasm user this principal acts as (defaults to `kasm.user_id`).
    #[serde(default)]
    pub kasm_user_id: Option<String>,
}

fn default_role() -> Role {
    Role::Operator
}

impl AuthConfig {
    /// The checks of this section that need no I/O.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for token in &self.tokens {
            if !names.insert(token.name.as_str()) {
                return Err(invalid(
                    "auth.tokens[].name",
                    &token.name,
                    "token names must be unique: the name is the principal's identity (rate \
                     limits, session ids, cancellation, audit), so give each [[auth.tokens]] \
                     entry its own name",
                ));
            }
            if token.name.starts_with(OAUTH_PRINCIPAL_PREFIX) {
                return Err(invalid(
                    "auth.tokens[].name",
                    &token.name,
                    "names starting with `oauth:` are reserved for OAuth principals \
                     (`oauth:<sub>`): rename the token",
                ));
            }
            if let Some(user) = token.kasm_user_id.as_deref().filter(|u| !is_kasm_uuid(u)) {
                return Err(invalid(
                    "auth.tokens[].kasm_user_id",
                    user,
                    "use the Kasm user's UUID",
                ));
            }
        }
        Ok(())
    }

    /// Names of the non-admin tokens that have no `kasm_user_id`, when there are two or more.
    /// They all act as `kasm.user_id` and so can see, exec in and destroy each other's
    /// sessions; `serve` warns about this at start-up (it is allowed: one shared user may be
    /// intended).
    pub fn shared_user_principals(&self) -> Vec<&str> {
        let sharing: Vec<&str> = self
            .tokens
            .iter()
            .filter(|t| t.role != Role::Admin && t.kasm_user_id.is_none())
            .map(|t| t.name.as_str())
            .collect();
        if sharing.len() > 1 {
            sharing
        } else {
            Vec::new()
        }
    }
}
