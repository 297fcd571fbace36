//! Who is calling: a named bearer token (static, or an OAuth access token's subject) with a
//! role and the Kasm user it acts as.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Roles, ordered: each one may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads state: list, status, screenshots, file reads.
    Viewer,
    /// Also changes its own sessions: create, destroy, exec, write files.
    Operator,
    /// Also sees every session and manages Kasm users.
    Admin,
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: use viewer, operator or admin"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// An authenticated caller. Never holds the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The token's configured name (shown in audit lines and metrics).
    pub name: String,
    pub role: Role,
    /// Kasm user id (32 hex) this principal acts as, if any.
    pub kasm_user_id: Option<String>,
    /// What the OAuth access token granted; `None` for static tokens and anonymous access.
    pub oauth: Option<OAuthGrant>,
}

/// The name prefix of OAuth principals (`oauth:<sub>`); static token names may not use it, so
/// the two kinds never share a principal identity (sessions, rate limits, audit).
pub const OAUTH_PRINCIPAL_PREFIX: &str = "oauth:";

/// The audit-relevant part of an OAuth access token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthGrant {
    /// The OAuth client the token was issued to (`client_id` or `azp`).
    pub client_id: Option<String>,
    /// The token's scopes.
    pub scopes: Vec<String>,
}

impl Principal {
    /// The principal used when authentication is switched off (loopback only).
    pub fn anonymous_admin(kasm_user_id: Option<String>) -> Self {
        Principal {
            name: "anonymous".into(),
            role: Role::Admin,
            kasm_user_id,
            oauth: None,
        }
    }
}
