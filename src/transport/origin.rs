//! The audit facts of an HTTP request: its request id (set by `http::request_id`, so an audit
//! event joins the HTTP trace) and the peer's IP address.

use std::net::SocketAddr;

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
            .map(|Extension(ConnectInfo(addr))| addr.ip().to_string()),
    }
}
