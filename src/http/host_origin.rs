//! DNS-rebinding protection: the `Host` header must name this server (loopback names always,
//! plus `server.allowed_hosts`), and an `Origin` header, when present, must be a loopback
//! origin or one of `server.allowed_origins`. Anything else gets 403.
//!
//! Host values and entries are compared as [`HostPort`]s: the name whole and case-blind, an
//! empty port as no port, one trailing dot as the same name (see [`super::host_name`] for why
//! that is the RFCs' reading and keeps rebinding out). An entry without a port matches any
//! port; an entry with a port matches that port only (also not the header without a port:
//! behind a proxy the server cannot know the scheme's default).
//!
//! Origins (the header and `server.allowed_origins` entries alike) are URLs whose host is
//! read by the same rules ([`OriginParts`]): `http://localhost.:3000` is `http://localhost:3000`,
//! as `Host: localhost.:3000` is `localhost:3000`. An origin still matches an entry only with
//! the same scheme, the same whole name and the same port (the scheme's default when none or
//! an empty one is written).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, header};

use super::error::json_error;
use super::host_name::HostPort;
use super::refuse::{Decide, Decision};
use crate::config::ServerConfig;

const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// A `server.allowed_hosts` entry (or the relay URL's host), parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// Without brackets or a trailing dot.
    name: String,
    /// `None`: any port.
    port: Option<u16>,
}

impl AllowedHost {
    fn parse(entry: &str) -> Option<Self> {
        let parsed = HostPort::parse(entry)?;
        Some(AllowedHost {
            name: parsed.name().to_owned(),
            port: parsed.port(),
        })
    }

    fn admits(&self, host: &HostPort<'_>) -> bool {
        host.names(&self.name) && (self.port.is_none() || self.port == host.port())
    }
}

/// The Host and Origin allowlists.
#[derive(Debug, Clone)]
pub struct HostOriginGuard {
    any_host: bool,
    hosts: Vec<AllowedHost>,
    any_origin: bool,
    origins: Vec<OriginParts>,
}

/// An origin (`scheme://host[:port]`, from the header or a `server.allowed_origins` entry)
/// taken apart: its host read as a `Host` name is ([`HostPort`]: brackets only around an IPv6
/// literal, one trailing dot the same name, `a..` refused), its port `None` when it is the
/// scheme's default (written or not, or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginParts {
    https: bool,
    /// Without brackets or a trailing dot.
    name: String,
    port: Option<u16>,
    /// `localhost`, or a loopback IP address.
    loopback: bool,
}

impl OriginParts {
    /// `None` for anything but an `http`/`https` URL with a host.
    fn parse(text: &str) -> Option<Self> {
        let url = url::Url::parse(text.trim()).ok()?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = HostPort::parse(url.host_str()?)?;
        let loopback = match url.host()? {
            url::Host::Domain(_) => host.names("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        };
        Some(OriginParts {
            https,
            name: host.name().to_owned(),
            port: url.port(),
            loopback,
        })
    }

    /// The same origin: scheme, whole name (case-blind) and port.
    fn same(&self, other: &OriginParts) -> bool {
        self.https == other.https
            && self.port == other.port
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl HostOriginGuard {
    /// From `server.allowed_hosts` / `server.allowed_origins` (`*` allows any).
    pub fn from_config(server: &ServerConfig) -> Self {
        let mut entries: Vec<String> = server
            .allowed_hosts
            .iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        // Session containers reach the relay by the host of `server.relay_url`.
        if let Some(relay_host) = server.relay_url.as_deref().and_then(relay_host) {
            entries.push(relay_host);
        }
        let any_host = entries.iter().any(|h| h == "*");
        let hosts = entries
            .iter()
            .filter(|h| *h != "*")
            .filter_map(|entry| {
                let parsed = AllowedHost::parse(entry);
                if parsed.is_none() {
                    tracing::warn!(
                        entry = %entry,
                        "server.allowed_hosts entry is not name[:port] and matches nothing; fix or remove it"
                    );
                }
                parsed
            })
            .collect();
        let origin_entries: Vec<&str> = server
            .allowed_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .collect();
        let origins = origin_entries
            .iter()
            .filter(|o| **o != "*")
            .filter_map(|entry| {
                let parsed = OriginParts::parse(entry);
                if parsed.is_none() {
                    tracing::warn!(
                        entry = %entry,
                        "server.allowed_origins entry is not an http(s)://host[:port] origin and matches nothing; fix or remove it"
                    );
                }
                parsed
            })
            .collect();
        HostOriginGuard {
            any_host,
            hosts,
            any_origin: origin_entries.contains(&"*"),
            origins,
        }
    }

    /// Whether a `Host` header value (`name[:port]`) is acceptable.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        // Compared ASCII-case-insensitively in place: no lower-cased copy per request.
        let Some(host) = HostPort::parse(host) else {
            return false;
        };
        LOOPBACK_HOSTS.iter().any(|loopback| host.names(loopback))
            || self.hosts.iter().any(|allowed| allowed.admits(&host))
    }

    /// Whether an `Origin` header value is acceptable.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        let Some(origin) = OriginParts::parse(origin) else {
            return false;
        };
        origin.loopback || self.origins.iter().any(|allowed| allowed.same(&origin))
    }
}

/// `host[:port]` of the relay URL, as clients put it in `Host`.
fn relay_host(relay_url: &str) -> Option<String> {
    let url = url::Url::parse(relay_url).ok()?;
    let host = match url.host()? {
        url::Host::Ipv6(ip) => format!("[{ip}]"),
        other => other.to_string(),
    };
    Some(match url.port() {
        Some(port) => format!("{host}:{port}").to_ascii_lowercase(),
        None => host.to_ascii_lowercase(),
    })
}

impl HostOriginGuard {
    /// Why `request` is refused (the 403 message), or `None` when its Host and Origin pass.
    pub fn refusal<B>(&self, request: &axum::http::Request<B>) -> Option<&'static str> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        let refusal = match host {
            Some(host) if self.host_allowed(host) => None,
            Some(_) => Some("Host header is not allowed (add it to server.allowed_hosts)"),
            None => Some("missing Host header"),
        };
        refusal.or_else(|| {
            let origin = request.headers().get(header::ORIGIN)?;
            let allowed = origin
                .to_str()
                .map(|o| self.origin_allowed(o))
                .unwrap_or(false);
            (!allowed).then_some("Origin is not allowed (add it to server.allowed_origins)")
        })
    }
}

/// The check: 403 on a foreign `Host` or `Origin` (a
/// [`RefuseLayer`](super::refuse::RefuseLayer) runs it; the lists are shared, not cloned).
impl Decide for Arc<HostOriginGuard> {
    fn decide(&self, request: Request) -> Decision {
        match self.refusal(&request) {
            Some(message) => Decision::Refuse(json_error(StatusCode::FORBIDDEN, message)),
            None => Decision::Pass(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str], origins: &[&str]) -> HostOriginGuard {
        let server = ServerConfig {
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..ServerConfig::default()
        };
        HostOriginGuard::from_config(&server)
    }

    #[test]
    fn loopback_hosts_always_pass() {
        let g = guard(&[], &[]);
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:9",
            "[::1]",
            "LOCALHOST",
            // An empty port is the default port; a trailing dot is the same name.
            "localhost:",
            "[::1]:",
            "localhost.",
            "localhost.:8080",
            "127.0.0.1.",
        ] {
            assert!(g.host_allowed(h), "{h}");
        }
        for h in [
            "evil.com",
            "evil.com:8080",
            "evil.com.",
            "localhost.evil.com",
            "127.0.0.2",
            "",
            "localhost:x",
            "localhost..",
            "localhost:65536",
            "[::1",
        ] {
            assert!(!g.host_allowed(h), "{h}");
        }
    }

    #[test]
    fn configured_hosts_with_and_without_port() {
        let g = guard(&["mcp.example.com", "other.example.com:8443"], &[]);
        assert!(g.host_allowed("mcp.example.com"));
        assert!(g.host_allowed("MCP.example.com:443"));
        assert!(g.host_allowed("other.example.com:8443"));
        assert!(!g.host_allowed("other.example.com:8444"));
        assert!(!g.host_allowed("other.example.com"));
        assert!(guard(&["*"], &[]).host_allowed("anything:1"));
    }

    #[test]
    fn relay_url_host_is_allowed() {
        let server = ServerConfig {
            relay_url: Some("http://10.1.2.3:8080/".into()),
            ..ServerConfig::default()
        };
        let g = HostOriginGuard::from_config(&server);
        assert!(g.host_allowed("10.1.2.3:8080"));
        assert!(!g.host_allowed("10.1.2.3:8081"));
        let server = ServerConfig {
            relay_url: Some("https://mcp.example.com".into()),
            ..ServerConfig::default()
        };
        assert!(HostOriginGuard::from_config(&server).host_allowed("mcp.example.com"));
    }

    #[test]
    fn origins() {
        let g = guard(&[], &["https://app.example.com"]);
        assert!(g.origin_allowed("http://localhost:3000"));
        assert!(g.origin_allowed("http://127.0.0.1"));
        assert!(g.origin_allowed("https://app.example.com"));
        assert!(g.origin_allowed("https://APP.example.com:443"));
        assert!(!g.origin_allowed("https://app.example.com:8443"));
        assert!(!g.origin_allowed("https://evil.example.com"));
        assert!(!g.origin_allowed("null"));
        assert!(!g.origin_allowed("file:///etc"));
        assert!(guard(&[], &["*"]).origin_allowed("https://any.example"));
    }

    /// The table of `Origin` values: the host read by the `Host` rules (one trailing dot is
    /// the same name, an empty port is the scheme's default, brackets only around IPv6), on
    /// both sides; scheme, whole name and port must still all match an entry.
    #[test]
    fn origins_read_their_host_by_the_host_rules() {
        let g = guard(
            &[],
            &[
                "https://app.example.com",
                "http://dotted.example.org.:8080",
                "HTTPS://Upper.Example.COM",
                "http://[FE80::1]:9000",
                "https://empty-port.example.net:",
                "app.example.com",
                "ftp://files.example.com",
                "https://bad.example.com..",
                "*.example.com",
            ],
        );
        for (origin, allowed) in [
            // Loopback, in every spelling a Host header may use.
            ("http://localhost:3000", true),
            ("http://localhost.:3000", true),
            ("http://LocalHost.", true),
            ("http://localhost:", true),
            ("http://localhost.:", true),
            ("https://localhost", true),
            ("http://127.0.0.1.:8080", true),
            ("http://127.0.0.1:", true),
            ("http://[::1]:", true),
            ("http://[::1]:6274", true),
            ("http://localhost..:3000", false),
            ("http://localhost.evil.com", false),
            ("http://localhost.evil.com.", false),
            ("http://evil.localhost", false),
            ("http://evil.localhost.", false),
            ("http://[localhost]:3000", false),
            ("http://::1", false),
            ("ws://localhost:3000", false),
            // Configured origins.
            ("https://app.example.com", true),
            ("https://app.example.com.", true),
            ("https://APP.example.com.:443", true),
            ("https://app.example.com:", true),
            ("https://app.example.com.:", true),
            ("https://app.example.com..", false),
            ("https://app.example.com:8443", false),
            ("https://app.example.com.:8443", false),
            ("http://app.example.com", false),
            ("http://app.example.com.", false),
            ("https://app.example.co", false),
            ("https://app.example.co.", false),
            ("https://xapp.example.com", false),
            ("https://app.example.com.evil.com", false),
            ("https://evil.app.example.com", false),
            ("http://dotted.example.org:8080", true),
            ("http://dotted.example.org.:8080", true),
            ("http://dotted.example.org", false),
            ("http://dotted.example.org:", false),
            ("https://upper.example.com", true),
            ("https://upper.example.com.", true),
            ("http://[fe80::1]:9000", true),
            ("http://[FE80::1]:9000", true),
            ("http://[fe80::1]:9001", false),
            ("http://[fe80::1]", false),
            ("https://empty-port.example.net", true),
            ("https://empty-port.example.net.:443", true),
            ("https://empty-port.example.net:444", false),
            // Entries that are not origins match nothing.
            ("http://app.example.com", false),
            ("ftp://files.example.com", false),
            ("https://bad.example.com..", false),
            ("https://bad.example.com", false),
            ("https://x.example.com", false),
            ("null", false),
            ("", false),
            ("file:///etc", false),
        ] {
            assert_eq!(g.origin_allowed(origin), allowed, "{origin:?}");
        }
    }

    /// The table of `Host` values: ports, IPv6 literals, trailing dots, mixed case, on both
    /// sides (configured entries and the header). An empty port is no port and one trailing
    /// dot is the same name (RFC 3986 §3.2.3 and §6.2.3, RFC 1034 §3.1: see `host_name`), on
    /// both sides; the name is still compared whole.
    #[test]
    fn hosts_compare_case_blind_with_ports_ipv6_and_trailing_dots() {
        let g = guard(
            &[
                "MCP.Example.com",
                "Other.example.com:8443",
                "[FE80::1]",
                "10.0.0.1:80",
                "dotted.example.org.",
                "not a:host",
            ],
            &[],
        );
        for (host, allowed) in [
            ("mcp.example.com", true),
            ("MCP.EXAMPLE.COM", true),
            ("mCp.ExAmPlE.cOm:1234", true),
            ("  mcp.example.com  ", true),
            ("mcp.example.com.", true),
            ("mcp.example.com.:443", true),
            ("mcp.example.com..", false),
            ("mcp.example.co", false),
            ("mcp.example.co.", false),
            ("xmcp.example.com", false),
            ("mcp.example.com.evil.com", false),
            ("mcp.example.com:", true),
            ("mcp.example.com.:", true),
            ("mcp.example.com:44x", false),
            ("mcp.example.com:99999", false),
            ("OTHER.EXAMPLE.COM:8443", true),
            ("other.example.com:8443", true),
            ("other.example.com.:8443", true),
            ("other.example.com:08443", true),
            ("other.example.com", false),
            // An empty port is the default one, not the entry's 8443.
            ("other.example.com:", false),
            ("Other.example.com:443", false),
            ("dotted.example.org", true),
            ("dotted.example.org.:80", true),
            ("dotted.example.org..", false),
            ("not a:host", false),
            ("not a", false),
            ("[fe80::1]", true),
            ("[FE80::1]:8080", true),
            ("[fe80::2]", false),
            ("fe80::1", true),
            ("[fe80::1]x", false),
            ("[fe80::1]:", true),
            ("10.0.0.1:80", true),
            ("10.0.0.1", false),
            ("10.0.0.1:81", false),
            ("Localhost.", true),
            ("LocalHost:1", true),
            ("[::1]", true),
            ("::1", true),
            ("[::1]:65535", true),
            ("[0:0:0:0:0:0:0:1]", false),
            ("127.0.0.1", true),
            ("", false),
            ("   ", false),
            (":80", false),
        ] {
            assert_eq!(g.host_allowed(host), allowed, "{host:?}");
        }
    }

    /// Case never changes a decision: every host, in lower and in upper case, against every
    /// configuration, also with its entries in the other case.
    #[test]
    fn the_decision_is_blind_to_case() {
        let names = [
            "localhost",
            "LocalHost.",
            "127.0.0.1",
            "::1",
            "[::1]",
            "[::1",
            "::1]",
            "mcp.example.com",
            "MCP.Example.COM",
            "mcp.example.com.",
            "mcp.example.com..",
            "[fe80::1]",
            "fe80::1",
            "",
            " ",
            "a:b",
        ];
        let ports = ["", ":", ":80", ":8443", ":x", ":8O"];
        let configs: [&[&str]; 4] = [
            &[],
            &["mcp.example.com"],
            &["MCP.EXAMPLE.COM:8443", "[FE80::1]", "localhost."],
            &["*"],
        ];
        for config in configs {
            let lower: Vec<String> = config.iter().map(|e| e.to_ascii_lowercase()).collect();
            let upper: Vec<String> = config.iter().map(|e| e.to_ascii_uppercase()).collect();
            let guards = [lower, upper]
                .map(|entries| guard(&entries.iter().map(String::as_str).collect::<Vec<_>>(), &[]));
            let g = guard(config, &[]);
            for name in names {
                for port in ports {
                    let host = format!("{name}{port}");
                    let decision = g.host_allowed(&host);
                    for other in [host.to_ascii_lowercase(), host.to_ascii_uppercase()] {
                        for checked in [&g, &guards[0], &guards[1]] {
                            assert_eq!(
                                checked.host_allowed(&other),
                                decision,
                                "{other:?} against {config:?} in another case"
                            );
                        }
                    }
                }
            }
        }
    }

    /// What the layer answers for a request with these headers (200 and an empty body: the
    /// request was passed on), as status, `Content-Type` and body.
    async fn layer_response(
        host: Option<&str>,
        origin: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        use axum::body::Body;
        use axum::response::Response;
        let inner = tower::service_fn(|_: Request| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
        });
        let mut request = Request::new(Body::empty());
        for (name, value) in [(header::HOST, host), (header::ORIGIN, origin)] {
            if let Some(value) = value {
                request.headers_mut().insert(name, value.parse().unwrap());
            }
        }
        let guard = Arc::new(guard(&["mcp.example.com"], &[]));
        let (status, headers, body) = crate::http::refuse::respond(guard, inner, request).await;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, content_type, body)
    }

    /// The status the layer answers for a request with these headers (200: passed on).
    async fn layer_status(host: Option<&str>, origin: Option<&str>) -> StatusCode {
        layer_response(host, origin).await.0
    }

    #[tokio::test]
    async fn each_refusal_is_a_json_403_naming_its_cause() {
        let json = Some("application/json".to_owned());
        for (host, origin, message) in [
            (
                Some("evil.com"),
                None,
                "Host header is not allowed (add it to server.allowed_hosts)",
            ),
            (None, None, "missing Host header"),
            (
                Some("localhost"),
                Some("https://evil.example"),
                "Origin is not allowed (add it to server.allowed_origins)",
            ),
            // The Host is checked first: a foreign Host with a foreign Origin names the Host.
            (
                Some("evil.com"),
                Some("https://evil.example"),
                "Host header is not allowed (add it to server.allowed_hosts)",
            ),
        ] {
            let body = serde_json::json!({ "error": message }).to_string();
            assert_eq!(
                layer_response(host, origin).await,
                (StatusCode::FORBIDDEN, json.clone(), body),
                "{host:?} {origin:?}"
            );
        }
        assert_eq!(
            layer_response(Some("MCP.EXAMPLE.COM:443"), Some("http://[::1]:6274")).await,
            (StatusCode::OK, None, String::new())
        );
    }

    #[tokio::test]
    async fn the_layer_refuses_before_the_service() {
        assert_eq!(
            layer_status(Some("localhost:1"), None).await,
            StatusCode::OK
        );
        assert_eq!(
            layer_status(Some("mcp.example.com"), None).await,
            StatusCode::OK
        );
        assert_eq!(
            layer_status(Some("evil.com"), None).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(layer_status(None, None).await, StatusCode::FORBIDDEN);
        assert_eq!(
            layer_status(Some("localhost"), Some("https://evil.example")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            layer_status(Some("localhost"), Some("http://localhost:3000")).await,
            StatusCode::OK
        );
        // The trailing dot the Host header may carry, the Origin header may carry too.
        assert_eq!(
            layer_status(Some("localhost.:3000"), Some("http://localhost.:3000")).await,
            StatusCode::OK
        );
        assert_eq!(
            layer_status(Some("mcp.example.com."), Some("http://evil.example.")).await,
            StatusCode::FORBIDDEN
        );
    }
}
