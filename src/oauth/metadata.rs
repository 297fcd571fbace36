//! OAuth 2.0 Protected Resource Metadata (RFC 9728), served only when OAuth is configured:
//! at `/.well-known/oauth-protected-resource` and at the path-suffixed form for the
//! configured resource (e.g. `…/oauth-protected-resource/mcp`), which MCP clients try first.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::verifier::OAuthVerifier;

/// The metadata document.
pub fn document(verifier: &OAuthVerifier) -> Value {
    let s = verifier.settings();
    json!({
        "resource": s.resource.as_str(),
        "authorization_servers": [s.issuer],
        "scopes_supported": s.scopes(),
        "bearer_methods_supported": ["header"],
        "resource_signing_alg_values_supported": s.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
        "resource_name": "kasm-mcp (Kasm Workspaces)",
    })
}

async fn serve(verifier: Arc<OAuthVerifier>) -> Response {
    let mut response = axum::Json(document(&verifier)).into_response();
    // Public, and read by browser-based clients (the MCP Inspector) from another origin.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// The metadata routes (outside authentication).
pub fn routes(verifier: Arc<OAuthVerifier>) -> Router {
    let root = "/.well-known/oauth-protected-resource".to_owned();
    let path = verifier.settings().resource.path().trim_end_matches('/');
    let suffixed = format!("{root}{path}");
    let mut router = Router::new();
    for route in [root.clone(), suffixed]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
    {
        let v = verifier.clone();
        router = router.route(&route, get(move || serve(v.clone())));
    }
    router
}
