//! `WWW-Authenticate` values (RFC 6750 §3, RFC 9728 §5.1). Without OAuth, a plain
//! `Bearer realm="kasm-mcp"`: no discovery metadata, so a client given a static header keeps
//! sending it instead of starting an OAuth flow. With OAuth, the challenge points at the
//! protected-resource metadata and names the scopes.

use axum::http::HeaderValue;
use url::Url;

/// The realm named in every challenge.
pub const REALM: &str = "kasm-mcp";

/// The challenge when OAuth is not configured.
pub fn plain() -> HeaderValue {
    HeaderValue::from_static("Bearer realm=\"kasm-mcp\"")
}

/// The absolute URL of the protected-resource metadata for `resource` (RFC 9728 §3.1: the
/// well-known segment goes between the host and the resource's path).
pub fn metadata_url(resource: &Url) -> String {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// Characters a quoted-string parameter may not carry unescaped; the values we put there
/// (URLs, configured scopes, our own messages) are checked, so this only guards a mistake.
fn quoted(value: &str) -> String {
    value.replace(['"', '\\'], "'")
}

fn header(parts: &[(&str, String)]) -> HeaderValue {
    let params: Vec<String> = parts
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", quoted(v)))
        .collect();
    HeaderValue::from_str(&format!("Bearer {}", params.join(", "))).unwrap_or_else(|_| plain())
}

/// 401 with OAuth: where the metadata is and which scopes to ask for; `error` is
/// `invalid_token` when a token was presented and refused (RFC 6750 §3.1), none when no
/// token was sent.
pub fn unauthorized(metadata: &str, scopes: &str, invalid: Option<&str>) -> HeaderValue {
    let mut parts = vec![
        ("resource_metadata", metadata.to_owned()),
        ("scope", scopes.to_owned()),
    ];
    if let Some(description) = invalid {
        parts.push(("error", "invalid_token".into()));
        parts.push(("error_description", description.to_owned()));
    }
    header(&parts)
}

/// 403 step-up: the scopes the call needs (SEP-835 / RFC 6750 `insufficient_scope`).
pub fn insufficient_scope(metadata: &str, scopes: &str) -> HeaderValue {
    header(&[
        ("error", "insufficient_scope".into()),
        ("scope", scopes.to_owned()),
        ("resource_metadata", metadata.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_segment() {
        let r = Url::parse("https://mcp.example.com/mcp").unwrap();
        assert_eq!(
            metadata_url(&r),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let root = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            metadata_url(&root),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn challenges_have_the_rfc_shape() {
        assert_eq!(plain(), "Bearer realm=\"kasm-mcp\"");
        assert_eq!(
            unauthorized(
                "https://h/.well-known/oauth-protected-resource/mcp",
                "a b",
                None
            ),
            "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", scope=\"a b\""
        );
        let v = unauthorized("m", "a", Some("the token has expired"));
        assert!(
            v.to_str()
                .unwrap()
                .ends_with("error=\"invalid_token\", error_description=\"the token has expired\"")
        );
        assert_eq!(
            insufficient_scope("m", "kasm:operate"),
            "Bearer error=\"insufficient_scope\", scope=\"kasm:operate\", resource_metadata=\"m\""
        );
    }
}
