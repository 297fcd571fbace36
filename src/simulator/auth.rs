//! Kasm's `Authenticated` decorator, reproduced: credentials from the `api-key`/`api-key-secret`
//! headers or the JSON body, the endpoint's permission (via `kasm::permissions`), the Read-Only
//! flag, and `user_id` impersonation (needs "Users Auth Session"; unknown users are a 400).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::config::SimKey;
use super::reply::Reply;
use crate::kasm::permissions::{self, EndpointSpec, names};

/// An API key the simulator accepts.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Shown in Kasm's messages (`API Key (<name>) is not authorized…`).
    pub name: String,
    pub key: String,
    pub secret: String,
    pub permissions: Vec<String>,
    pub read_only: bool,
    /// The simulator's own key (may also drive `/__simulator/*`).
    pub primary: bool,
}

impl KeyInfo {
    /// The primary key: every permission the client's table knows, plus Global Admin.
    pub fn primary(key: &str, secret: &str) -> KeyInfo {
        let mut perms: Vec<String> = vec![
            names::USER.into(),
            names::USERS_AUTH_SESSION.into(),
            names::GLOBAL_ADMIN.into(),
        ];
        for e in permissions::ENDPOINTS {
            if !perms.iter().any(|p| p == e.permission) {
                perms.push(e.permission.to_string());
            }
        }
        KeyInfo {
            name: "simulator".into(),
            key: key.into(),
            secret: secret.into(),
            permissions: perms,
            read_only: false,
            primary: true,
        }
    }

    pub fn extra(k: &SimKey) -> KeyInfo {
        KeyInfo {
            name: k.key.clone(),
            key: k.key.clone(),
            secret: k.secret.clone(),
            permissions: k.permissions.clone(),
            read_only: k.read_only,
            primary: false,
        }
    }

    pub fn has(&self, permission: &str) -> bool {
        permissions::grants(&self.permissions, permission)
    }
}

/// Find the key the request authenticates with.
///
/// Headers win over the body (1.15 code); none at all → 400 `Invalid Request`;
/// wrong key or secret → 403 `Access Denied`.
pub fn authenticate<'k>(
    keys: &'k [KeyInfo],
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<&'k KeyInfo, Reply> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (key, secret) = match header("api-key") {
        Some(key) => (Some(key), header("api-key-secret")),
        None => (
            body.get("api_key").and_then(Value::as_str),
            body.get("api_key_secret").and_then(Value::as_str),
        ),
    };
    let Some(key) = key else {
        return Err(Reply::status_error(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
        ));
    };
    let secret = secret.unwrap_or_default();
    keys.iter()
        .find(|k| k.key == key && bool::from(k.secret.as_bytes().ct_eq(secret.as_bytes())))
        .ok_or_else(|| Reply::status_error(StatusCode::FORBIDDEN, "Access Denied"))
}

/// Alternative permissions that also open an endpoint (Kasm's handlers ask for "any of").
fn alternatives(endpoint: &str) -> &'static [&'static str] {
    match endpoint {
        "destroy_kasm" => &[names::SESSIONS_DELETE],
        "stop_kasm" | "pause_kasm" | "resume_kasm" => &[names::SESSIONS_MODIFY],
        _ => &[],
    }
}

/// Permission and Read-Only checks for an endpoint.
pub fn authorize(
    key: &KeyInfo,
    spec: &EndpointSpec,
    missing_status: StatusCode,
) -> Result<(), Reply> {
    let allowed = key.has(spec.permission) || alternatives(spec.name).iter().any(|p| key.has(p));
    if !allowed {
        return Err(Reply::status_error(missing_status, "Unauthorized"));
    }
    if key.read_only && !spec.read_only {
        return Err(Reply::status_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
        ));
    }
    Ok(())
}

/// The message for a key that may not act as a user.
pub fn impersonation_denied(key: &KeyInfo) -> Reply {
    Reply::status_error(
        StatusCode::UNAUTHORIZED,
        format!(
            "API Key ({}) is not authorized to impersonate a user.",
            key.name
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Vec<KeyInfo> {
        vec![
            KeyInfo::primary("k", "s"),
            KeyInfo::extra(&SimKey {
                key: "ro".into(),
                secret: "rs".into(),
                permissions: vec!["User".into()],
                read_only: true,
            }),
        ]
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn credentials_from_body_or_headers() {
        let keys = keys();
        let b = body(json!({"api_key": "k", "api_key_secret": "s"}));
        assert!(authenticate(&keys, &HeaderMap::new(), &b).unwrap().primary);
        let mut h = HeaderMap::new();
        h.insert("api-key", "ro".parse().unwrap());
        h.insert("api-key-secret", "rs".parse().unwrap());
        assert!(!authenticate(&keys, &h, &Map::new()).unwrap().primary);
    }

    #[test]
    fn wrong_or_missing_credentials() {
        let keys = keys();
        let wrong = body(json!({"api_key": "k", "api_key_secret": "nope"}));
        match authenticate(&keys, &HeaderMap::new(), &wrong) {
            Err(Reply::Json(s, v)) => {
                assert_eq!(s, StatusCode::FORBIDDEN);
                assert_eq!(v["error_message"], "Access Denied");
            }
            other => panic!("{other:?}"),
        }
        match authenticate(&keys, &HeaderMap::new(), &Map::new()) {
            Err(Reply::Json(s, _)) => assert_eq!(s, StatusCode::BAD_REQUEST),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn permissions_and_read_only() {
        let keys = keys();
        let primary = &keys[0];
        let ro = &keys[1];
        for e in permissions::ENDPOINTS {
            assert!(
                authorize(primary, e, StatusCode::UNAUTHORIZED).is_ok(),
                "{}",
                e.name
            );
        }
        let status = permissions::endpoint("get_kasm_status").unwrap();
        let request = permissions::endpoint("request_kasm").unwrap();
        let users = permissions::endpoint("get_users").unwrap();
        assert!(authorize(ro, status, StatusCode::UNAUTHORIZED).is_ok());
        assert!(authorize(ro, request, StatusCode::UNAUTHORIZED).is_err());
        match authorize(ro, users, StatusCode::FORBIDDEN) {
            Err(Reply::Json(s, _)) => assert_eq!(s, StatusCode::FORBIDDEN),
            other => panic!("{other:?}"),
        }
    }
}
