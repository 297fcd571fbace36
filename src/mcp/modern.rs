//! The stateless 2026-07-28 revision: recognising a modern request, validating its per-request
//! `_meta` and the `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers, and shaping
//! results (`resultType`, `ttlMs`/`cacheScope`, `server/discover`).
//!
//! A request is *modern* when its `params._meta` names a protocol version, when its
//! `MCP-Protocol-Version` header is not a legacy revision, or when it calls `server/discover`.
//! Everything else (in particular a client that opens with `initialize`) is legacy.

use serde_json::{Map, Value, json};

use crate::mcp::jsonrpc::{RpcError, code};
use crate::mcp::lifecycle::{
    Features, MODERN_VERSION, ServerIdentity, capabilities, is_legacy_version, supported_versions,
};
use crate::mcp::meta::RequestMeta;
use crate::mcp::method::Method;
use crate::mcp::tool::LogLevel;

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// How long clients may cache list results and resource reads (milliseconds).
pub const LIST_TTL_MS: u64 = 60_000;

/// What a validated modern request declared.
#[derive(Debug, Clone, PartialEq)]
pub struct ModernRequest {
    pub version: String,
    pub client_capabilities: Value,
    /// `_meta["io.modelcontextprotocol/logLevel"]`: log messages at or above it are sent.
    pub log_level: Option<LogLevel>,
    /// The request's `Mcp-Param-*` headers as (suffix, value), when the transport forwards
    /// them (`McpServer::handle_with_param_headers`); None = not checked.
    pub param_headers: Option<Vec<(String, String)>>,
}

impl ModernRequest {
    /// Whether the client declared `capability` for this request.
    pub fn declares(&self, capability: &str) -> bool {
        self.client_capabilities
            .get(capability)
            .is_some_and(|c| !c.is_null())
    }
}

/// A refusal that the transport turns into an HTTP status plus a JSON-RPC error body.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub error: RpcError,
}

impl Refusal {
    fn bad_request(error: RpcError) -> Self {
        Refusal { status: 400, error }
    }
}

fn request_meta(params: Option<&Value>) -> Option<&Map<String, Value>> {
    params?.get("_meta")?.as_object()
}

fn header(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim)
}

/// Whether this request is served under 2026-07-28 rules.
pub fn is_modern(method: &str, params: Option<&Value>, meta: &RequestMeta) -> bool {
    if request_meta(params).is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION)) {
        return true;
    }
    if let Some(version) = header(&meta.protocol_version_header)
        && !is_legacy_version(version)
    {
        return true;
    }
    Method::parse(method) == Some(Method::ServerDiscover)
}

/// Whether `method` exists in 2026-07-28 for a server with `features`.
pub fn is_modern_method(method: &str, features: Features) -> bool {
    let Some(method) = Method::parse(method).filter(|m| m.is_modern()) else {
        return false;
    };
    match method {
        Method::ResourcesList | Method::ResourcesTemplatesList | Method::ResourcesRead => {
            features.resources
        }
        Method::PromptsList | Method::PromptsGet => features.prompts,
        Method::CompletionComplete => features.completions,
        Method::TasksGet | Method::TasksCancel | Method::TasksUpdate => features.tasks,
        _ => true,
    }
}

/// Validate `_meta` and the headers of a modern request, in the order the spec's checks
/// imply: malformed `_meta` (-32602), header/body disagreement (-32020), unsupported
/// version (-32022). All refusals are HTTP 400.
pub fn validate(
    method: &str,
    params: Option<&Value>,
    meta: &RequestMeta,
) -> Result<ModernRequest, Refusal> {
    let Some(request_meta) = request_meta(params) else {
        return Err(Refusal::bad_request(RpcError::invalid_params(format!(
            "a {MODERN_VERSION} request needs params._meta with {META_PROTOCOL_VERSION:?} and {META_CLIENT_CAPABILITIES:?}"
        ))));
    };
    let Some(version) = request_meta
        .get(META_PROTOCOL_VERSION)
        .and_then(Value::as_str)
    else {
        return Err(Refusal::bad_request(RpcError::invalid_params(format!(
            "params._meta[{META_PROTOCOL_VERSION:?}] must be a string"
        ))));
    };
    let Some(client_capabilities) = request_meta
        .get(META_CLIENT_CAPABILITIES)
        .filter(|c| c.is_object())
    else {
        return Err(Refusal::bad_request(RpcError::invalid_params(format!(
            "params._meta[{META_CLIENT_CAPABILITIES:?}] must be an object"
        ))));
    };
    let log_level = match request_meta.get(META_LOG_LEVEL) {
        None | Some(Value::Null) => None,
        Some(level) => match level.as_str().and_then(LogLevel::parse) {
            Some(level) => Some(level),
            None => {
                return Err(Refusal::bad_request(RpcError::invalid_params(format!(
                    "params._meta[{META_LOG_LEVEL:?}] must be one of debug, info, notice, warning, error, critical, alert, emergency"
                ))));
            }
        },
    };
    let mismatch = |what: String| Refusal::bad_request(RpcError::new(code::HEADER_MISMATCH, what));
    match header(&meta.protocol_version_header) {
        Some(h) if h == version => {}
        Some(h) => {
            return Err(mismatch(format!(
                "MCP-Protocol-Version header {h:?} does not match params._meta protocol version {version:?}"
            )));
        }
        None => {
            return Err(mismatch(
                "the MCP-Protocol-Version header is required".to_string(),
            ));
        }
    }
    if version != MODERN_VERSION {
        return Err(Refusal::bad_request(
            RpcError::new(
                code::UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
            )
            .with_data(json!({ "supported": supported_versions(), "requested": version })),
        ));
    }
    match header(&meta.mcp_method_header) {
        Some(h) if h == method => {}
        Some(h) => {
            return Err(mismatch(format!(
                "Mcp-Method header {h:?} does not match the body's method {method:?}"
            )));
        }
        None => return Err(mismatch("the Mcp-Method header is required".to_string())),
    }
    let name_field = Method::parse(method).and_then(Method::name_field);
    if let Some(field) = name_field {
        let body_name = params.and_then(|p| p.get(field)).and_then(Value::as_str);
        match (header(&meta.mcp_name_header), body_name) {
            (Some(h), Some(b)) if h == b => {}
            (None, None) => {}
            (h, b) => {
                return Err(mismatch(format!(
                    "Mcp-Name header {h:?} does not match params.{field} {b:?}"
                )));
            }
        }
    }
    Ok(ModernRequest {
        version: version.to_string(),
        client_capabilities: client_capabilities.clone(),
        log_level,
        param_headers: None,
    })
}

/// Decode an `Mcp-Param-*` header value: `=?base64?…?=` is strict standard Base64 of UTF-8;
/// anything else is taken literally.
pub fn decode_param_header(value: &str) -> Result<String, String> {
    let value = value.trim();
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("invalid Base64 ({e})"))?;
            String::from_utf8(bytes).map_err(|_| "Base64 value is not UTF-8".to_string())
        }
        None => Ok(value.to_string()),
    }
}

/// Check the `Mcp-Param-<Name>` headers against the arguments for every input-schema property
/// that declares `"x-mcp-header": "<Name>"`: a value in the body needs its header, and the
/// decoded header must equal the value. Mismatch → -32020 (HTTP 400).
pub fn check_param_headers(
    input_schema: &Value,
    arguments: &Map<String, Value>,
    headers: &[(String, String)],
) -> Result<(), RpcError> {
    let Some(properties) = input_schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (property, schema) in properties {
        let Some(name) = schema.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let header = headers
            .iter()
            .find(|(suffix, _)| suffix.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let body = arguments
            .get(property)
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        let mismatch = |why: String| RpcError::new(code::HEADER_MISMATCH, why);
        match (header, body) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch(format!(
                    "argument {property:?} is in the body but the Mcp-Param-{name} header is missing"
                )));
            }
            (Some(_), None) => {
                return Err(mismatch(format!(
                    "the Mcp-Param-{name} header is set but argument {property:?} is not in the body"
                )));
            }
            (Some(raw), Some(body)) => {
                let decoded = decode_param_header(raw)
                    .map_err(|e| mismatch(format!("Mcp-Param-{name}: {e}")))?;
                if decoded != body {
                    return Err(mismatch(format!(
                        "Mcp-Param-{name} does not match argument {property:?}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The 404 refusal for a method 2026-07-28 does not have (or this server does not offer).
pub fn method_not_found(method: &str) -> Refusal {
    Refusal {
        status: 404,
        error: RpcError::method_not_found(method),
    }
}

/// Add the fields every 2026-07-28 result carries: `resultType`, and the caching hints on
/// list results and resource reads (per-principal filtering makes them private).
pub fn decorate_result(method: &str, mut result: Value) -> Value {
    if let Some(obj) = result.as_object_mut() {
        if matches!(
            obj.get("resultType").and_then(Value::as_str),
            Some("input_required" | "task")
        ) {
            return result;
        }
        obj.insert("resultType".into(), json!("complete"));
        let cacheable = Method::parse(method).is_some_and(Method::is_cacheable);
        if cacheable {
            obj.insert("ttlMs".into(), json!(LIST_TTL_MS));
            obj.insert("cacheScope".into(), json!("private"));
        }
    }
    result
}

/// The `DiscoverResult` (before [`decorate_result`]).
pub fn discover_result(identity: &ServerIdentity, features: Features) -> Value {
    let mut result = json!({
        "supportedVersions": supported_versions(),
        "capabilities": capabilities(features, false),
        "serverInfo": identity.server_info(),
        "_meta": { META_SERVER_INFO: identity.server_info() },
    });
    if let (Some(instructions), Some(obj)) = (&identity.instructions, result.as_object_mut()) {
        obj.insert("instructions".into(), json!(instructions));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Principal;
    use tokio::sync::mpsc;

    fn meta(version: Option<&str>, method: Option<&str>, name: Option<&str>) -> RequestMeta {
        let (tx, _rx) = mpsc::unbounded_channel();
        RequestMeta {
            principal: Principal::anonymous_admin(None),
            notifications: tx,
            session_key: None,
            protocol_version_header: version.map(String::from),
            mcp_method_header: method.map(String::from),
            mcp_name_header: name.map(String::from),
            origin: Default::default(),
        }
    }

    fn params(version: &str, extra: Value) -> Value {
        let mut p = json!({"_meta": {
            META_PROTOCOL_VERSION: version,
            META_CLIENT_CAPABILITIES: {},
        }});
        if let (Some(obj), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        p
    }

    #[test]
    fn detects_the_era_of_a_request() {
        let legacy_header = meta(Some("2025-11-25"), None, None);
        let none = meta(None, None, None);
        let modern_header = meta(Some("2026-07-28"), None, None);
        let with_meta = params("2026-07-28", json!({}));
        assert!(!is_modern(
            "initialize",
            Some(&json!({"protocolVersion":"2025-11-25"})),
            &none
        ));
        assert!(!is_modern("tools/list", None, &legacy_header));
        assert!(is_modern("tools/list", None, &modern_header));
        assert!(is_modern("initialize", Some(&with_meta), &none));
        assert!(is_modern("server/discover", None, &none));
        assert!(is_modern(
            "tools/list",
            None,
            &meta(Some("v999"), None, None)
        ));
    }

    #[test]
    fn validation_table() {
        let ok = || meta(Some("2026-07-28"), Some("tools/call"), Some("echo"));
        let call = params("2026-07-28", json!({"name":"echo"}));
        type Case = (&'static str, Option<Value>, RequestMeta, Option<(u16, i64)>);
        let cases: Vec<Case> = vec![
            ("valid", Some(call.clone()), ok(), None),
            (
                "no _meta",
                Some(json!({"name":"echo"})),
                ok(),
                Some((400, -32602)),
            ),
            ("no params", None, ok(), Some((400, -32602))),
            (
                "no version in _meta",
                Some(json!({"name":"echo","_meta":{META_CLIENT_CAPABILITIES:{}}})),
                ok(),
                Some((400, -32602)),
            ),
            (
                "no capabilities in _meta",
                Some(json!({"name":"echo","_meta":{META_PROTOCOL_VERSION:"2026-07-28"}})),
                ok(),
                Some((400, -32602)),
            ),
            (
                "version header missing",
                Some(call.clone()),
                meta(None, Some("tools/call"), Some("echo")),
                Some((400, -32020)),
            ),
            (
                "version header differs from _meta",
                Some(params("v999", json!({"name":"echo"}))),
                ok(),
                Some((400, -32020)),
            ),
            (
                "unsupported version in both",
                Some(params("v999", json!({"name":"echo"}))),
                meta(Some("v999"), Some("tools/call"), Some("echo")),
                Some((400, -32022)),
            ),
            (
                "method header missing",
                Some(call.clone()),
                meta(Some("2026-07-28"), None, Some("echo")),
                Some((400, -32020)),
            ),
            (
                "method header case differs",
                Some(call.clone()),
                meta(Some("2026-07-28"), Some("TOOLS/CALL"), Some("echo")),
                Some((400, -32020)),
            ),
            (
                "name header differs",
                Some(call.clone()),
                meta(Some("2026-07-28"), Some("tools/call"), Some("other")),
                Some((400, -32020)),
            ),
            (
                "name header missing",
                Some(call.clone()),
                meta(Some("2026-07-28"), Some("tools/call"), None),
                Some((400, -32020)),
            ),
            (
                "whitespace around header values",
                Some(call.clone()),
                meta(Some(" 2026-07-28 "), Some(" tools/call"), Some("  echo  ")),
                None,
            ),
            (
                "bad log level",
                Some(
                    json!({"name":"echo","_meta":{META_PROTOCOL_VERSION:"2026-07-28",
                    META_CLIENT_CAPABILITIES:{}, META_LOG_LEVEL:"loud"}}),
                ),
                ok(),
                Some((400, -32602)),
            ),
        ];
        for (label, params, meta, expected) in cases {
            let got = validate("tools/call", params.as_ref(), &meta)
                .map(|_| ())
                .map_err(|r| (r.status, r.error.code));
            match expected {
                None => assert!(got.is_ok(), "{label}: {got:?}"),
                Some(e) => assert_eq!(got, Err(e), "{label}"),
            }
        }
    }

    #[test]
    fn unsupported_version_lists_what_is_supported() {
        let p = params("v999", json!({}));
        let r = validate("server/discover", Some(&p), &meta(Some("v999"), None, None)).unwrap_err();
        let data = r.error.data.unwrap();
        assert_eq!(data["requested"], "v999");
        assert_eq!(data["supported"][0], "2026-07-28");
    }

    #[test]
    fn resource_read_checks_name_against_uri() {
        let p = params("2026-07-28", json!({"uri":"test://a"}));
        let good = meta(Some("2026-07-28"), Some("resources/read"), Some("test://a"));
        assert!(validate("resources/read", Some(&p), &good).is_ok());
        let bad = meta(Some("2026-07-28"), Some("resources/read"), Some("test://b"));
        assert!(validate("resources/read", Some(&p), &bad).is_err());
    }

    #[test]
    fn results_are_decorated() {
        let r = decorate_result("tools/list", json!({"tools":[]}));
        assert_eq!(r["resultType"], "complete");
        assert_eq!(r["cacheScope"], "private");
        assert!(r["ttlMs"].as_u64().is_some());
        let r = decorate_result("tools/call", json!({"content":[]}));
        assert_eq!(r["resultType"], "complete");
        assert!(r.get("ttlMs").is_none());
    }

    #[test]
    fn param_headers_table() {
        let schema = json!({"type":"object","properties":{
            "region": {"type":"string","x-mcp-header":"Region"},
            "count": {"type":"integer","x-mcp-header":"Count"},
            "plain": {"type":"string"}
        }});
        let args = |v: Value| v.as_object().cloned().unwrap();
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        type Case = (&'static str, Value, Vec<(String, String)>, bool);
        let cases: Vec<Case> = vec![
            (
                "literal match",
                json!({"region":"eu"}),
                h(&[("Region", "eu")]),
                true,
            ),
            (
                "case-insensitive name",
                json!({"region":"eu"}),
                h(&[("region", " eu ")]),
                true,
            ),
            (
                "base64 match",
                json!({"region":"Hello"}),
                h(&[("Region", "=?base64?SGVsbG8=?=")]),
                true,
            ),
            (
                "bad padding",
                json!({"region":"Hello"}),
                h(&[("Region", "=?base64?SGVsbG8?=")]),
                false,
            ),
            (
                "bad chars",
                json!({"region":"Hello"}),
                h(&[("Region", "=?base64?SGVs!!!bG8=?=")]),
                false,
            ),
            (
                "prefix only is literal",
                json!({"region":"=?base64?SGVsbG8="}),
                h(&[("Region", "=?base64?SGVsbG8=")]),
                true,
            ),
            ("header missing", json!({"region":"eu"}), h(&[]), false),
            (
                "value differs",
                json!({"region":"eu"}),
                h(&[("Region", "us")]),
                false,
            ),
            (
                "header without body",
                json!({}),
                h(&[("Region", "eu")]),
                false,
            ),
            ("number", json!({"count":3}), h(&[("Count", "3")]), true),
            ("no annotated args", json!({"plain":"x"}), h(&[]), true),
        ];
        for (label, a, headers, ok) in cases {
            let got = check_param_headers(&schema, &args(a), &headers);
            assert_eq!(got.is_ok(), ok, "{label}: {got:?}");
            if let Err(e) = got {
                assert_eq!(e.code, -32020, "{label}");
            }
        }
    }

    #[test]
    fn method_table_respects_features() {
        let none = Features::default();
        assert!(is_modern_method("tools/call", none));
        assert!(!is_modern_method("resources/read", none));
        assert!(!is_modern_method("initialize", none));
        assert!(!is_modern_method("ping", none));
        assert!(!is_modern_method("logging/setLevel", none));
        let all = Features {
            resources: true,
            resource_subscriptions: true,
            prompts: true,
            completions: true,
            tasks: true,
        };
        assert!(is_modern_method("prompts/get", all));
        assert!(is_modern_method("tasks/get", all) && !is_modern_method("tasks/get", none));
        assert!(!is_modern_method("tasks/result", all) && !is_modern_method("tasks/list", all));
        assert!(!is_modern_method("resources/subscribe", all));
    }
}
