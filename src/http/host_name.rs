//! A `Host` header value (or a `server.allowed_hosts` entry, or the host of an `Origin`)
//! taken apart into its name and port, with the spellings of one authority made equal:
//!
//! - **An empty port is no port.** RFC 9110 §7.2 (`Host = uri-host [ ":" port ]`) takes `port`
//!   from RFC 3986 §3.2.3, `port = *DIGIT`: `name:` is well-formed, and §6.2.3 says an empty
//!   port means the scheme's default (`http://example.com:/` is `http://example.com/`). So
//!   `localhost:` and `[::1]:` are `localhost` and `[::1]`. A port above 65535 is refused.
//! - **One trailing dot is the same name.** `mcp.example.com.` is the fully qualified spelling
//!   of `mcp.example.com` (RFC 1034 §3.1): the same DNS name, resolved by the same records. It
//!   is dropped from the header and from configured entries alike; an empty label (`a..`, `.`)
//!   is refused.
//!
//! Neither weakens the DNS-rebinding protection ([`super::host_origin`]): a rebinding page
//! sends its own name as `Host` (`evil.example`, `evil.example.`), never one of ours, and the
//! name is still compared whole. Names compare ASCII-case-insensitively; IPv6 literals come
//! in brackets (`[fe80::1]:8080`), and a bare IPv6 address (`::1`, not RFC-valid in `Host`
//! but sent by some tools) is taken as a name without port.

/// A parsed `name[:port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort<'a> {
    name: &'a str,
    port: Option<u16>,
}

impl<'a> HostPort<'a> {
    /// `text` taken apart (surrounding white space ignored); `None` when it is not a host:
    /// empty name or label, unclosed bracket, a port that is not a number up to 65535.
    pub fn parse(text: &'a str) -> Option<Self> {
        let text = text.trim();
        let (name, port) = match text.strip_prefix('[') {
            // An IPv6 literal: `[addr]` then nothing or `:port`.
            Some(rest) => {
                let (name, after) = rest.split_once(']')?;
                // Only an IPv6 literal goes in brackets (no URL parser makes `[localhost]`).
                if !name.contains(':') {
                    return None;
                }
                let port = match after {
                    "" => "",
                    _ => after.strip_prefix(':')?,
                };
                (name, port)
            }
            None => match text.rsplit_once(':') {
                // A bare IPv6 address without brackets.
                Some((name, _)) if name.contains(':') => (text, ""),
                Some((name, port)) => (without_final_dot(name)?, port),
                None => (without_final_dot(text)?, ""),
            },
        };
        if name.is_empty() {
            return None;
        }
        let port = match port {
            "" => None,
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits.parse().ok()?),
            _ => return None,
        };
        Some(HostPort { name, port })
    }

    /// The name, without brackets or a trailing dot, as sent (not lower-cased).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The port; `None` when absent or empty.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether this names `name` (compared ASCII-case-insensitively).
    pub fn names(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// `name` without one final dot; `None` when that leaves an empty label (`a..`, `.`).
fn without_final_dot(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.ends_with('.')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports_in_every_allowed_spelling() {
        for (text, expected) in [
            ("localhost", Some(("localhost", None))),
            ("localhost:", Some(("localhost", None))),
            ("localhost.", Some(("localhost", None))),
            ("localhost.:", Some(("localhost", None))),
            ("LocalHost.:8080", Some(("LocalHost", Some(8080)))),
            (
                "  mcp.example.com:443  ",
                Some(("mcp.example.com", Some(443))),
            ),
            ("mcp.example.com:0443", Some(("mcp.example.com", Some(443)))),
            (
                "mcp.example.com:65535",
                Some(("mcp.example.com", Some(65535))),
            ),
            ("127.0.0.1.", Some(("127.0.0.1", None))),
            ("[::1]", Some(("::1", None))),
            ("[::1]:", Some(("::1", None))),
            ("[::1]:9", Some(("::1", Some(9)))),
            ("::1", Some(("::1", None))),
            ("fe80::1", Some(("fe80::1", None))),
            ("mcp.example.com:65536", None),
            ("mcp.example.com:44x", None),
            ("mcp.example.com:+1", None),
            ("mcp.example.com..", None),
            ("mcp.example.com..:80", None),
            (".", None),
            (".:80", None),
            (":80", None),
            (":", None),
            ("", None),
            ("   ", None),
            ("[::1", None),
            ("[::1]x", None),
            ("[::1].", None),
            ("[]", None),
            ("[]:80", None),
            ("[localhost]", None),
            ("[mcp.example.com]:80", None),
        ] {
            let parsed = HostPort::parse(text).map(|h| (h.name(), h.port()));
            assert_eq!(parsed, expected, "{text:?}");
        }
    }
}
