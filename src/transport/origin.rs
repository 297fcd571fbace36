//! The audit facts of an HTTP request: its request id (set by `http::request_id`, so an audit
//! event joins the HTTP trace) and the peer's IP address.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::ConnectInfo;
use axum::http::HeaderMap;

use crate::http::request_id::REQUEST_ID_HEADER;
use crate::mcp::Origin;

/// The peer address as the listener recorded it (absent in router-only tests).
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Where a request came from.
pub fn origin(headers: &HeaderMap, peer: &Peer) -> Origin {
    Origin {
        request_id: headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        client_ip: peer
            .as_ref()
            .map(|Extension(ConnectInfo(addr))| ip_text(addr.ip())),
    }
}

/// `ip.to_string()`: an IPv4 address written octet by octet (`Display` goes through the
/// formatter's padding machinery, ≈ 1 % of a tool call's instructions), IPv6 as `Display`
/// writes it.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
            text
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_is_to_string() {
        let mut ips: Vec<IpAddr> = [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.0.99.100",
            "1.20.109.200",
            "::1",
            "::",
            "::ffff:10.1.2.3",
            "2001:db8::8a2e:370:7334",
            "fe80::1%0",
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
        ips.extend((0..=255u8).map(|b| IpAddr::from([b, 255 - b, b / 3, b.wrapping_mul(7)])));
        assert!(ips.len() > 256);
        for ip in ips {
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }
}
