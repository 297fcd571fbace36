//! Streamable HTTP sessions across replicas (`[cluster]`). A session id is sealed (any
//! replica with the same `server.session_secret` verifies it), so only two facts need Redis:
//!
//! - a session ended with `DELETE /mcp` on one replica: `<prefix>:ended:<nonce>` until the id
//!   would have expired anyway, checked on every request that presents an id;
//! - what the client declared at `initialize` (protocol version, capabilities, name):
//!   `<prefix>:client:<session key>`, read by a replica that has not seen the session yet, so
//!   a request that lands there knows the client's capabilities (roots, elicitation).

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError};
use crate::mcp::state::ClientInfo;

fn ended_key(cluster: &Cluster, nonce: &str) -> String {
    cluster.redis().key(&["ended", nonce])
}

fn client_key(cluster: &Cluster, session_key: &str) -> String {
    cluster.redis().key(&["client", session_key])
}

/// Whether the session with `nonce` was ended on some replica.
pub async fn is_ended(cluster: &Cluster, nonce: &str) -> Result<bool, ClusterError> {
    cluster.redis().exists(&ended_key(cluster, nonce)).await
}

/// Record that the session with `nonce` ended; remembered for `ttl` (its remaining life).
pub async fn end(cluster: &Cluster, nonce: &str, ttl: Duration) -> Result<(), ClusterError> {
    cluster
        .redis()
        .set_px(&ended_key(cluster, nonce), b"1", ttl)
        .await
}

/// Share what the client declared at `initialize` under `session_key` for `ttl`.
pub async fn store_client(
    cluster: &Cluster,
    session_key: &str,
    client: &ClientInfo,
    ttl: Duration,
) -> Result<(), ClusterError> {
    let value = json!({
        "protocol_version": client.protocol_version,
        "capabilities": client.capabilities,
        "name": client.name,
    });
    cluster
        .redis()
        .set_px(
            &client_key(cluster, session_key),
            value.to_string().as_bytes(),
            ttl,
        )
        .await
}

/// What another replica shared about the client of `session_key`.
pub async fn load_client(
    cluster: &Cluster,
    session_key: &str,
) -> Result<Option<ClientInfo>, ClusterError> {
    let Some(raw) = cluster
        .redis()
        .get(&client_key(cluster, session_key))
        .await?
    else {
        return Ok(None);
    };
    let value: Value = serde_json::from_slice(&raw)
        .map_err(|e| ClusterError::Corrupt(format!("client of a session: {e}")))?;
    Ok(Some(ClientInfo {
        protocol_version: value["protocol_version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        capabilities: value["capabilities"].clone(),
        name: value["name"].as_str().map(str::to_owned),
    }))
}

/// Forget the client of an ended session.
pub async fn forget_client(cluster: &Cluster, session_key: &str) -> Result<(), ClusterError> {
    cluster
        .redis()
        .del(&[client_key(cluster, session_key)])
        .await
        .map(drop)
}
