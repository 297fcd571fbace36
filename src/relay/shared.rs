//! The relay's ticket table in Redis (`[cluster]`), so that whichever replica the load
//! balancer sends a container's request to can serve it:
//!
//! - `<prefix>:relay:t:<id>`: a hash with the binding, the owning replica, the upload cap and
//!   the SHA-256 of the ticket's key (never the key), plus the refusal counters; its TTL is the
//!   ticket's. `<prefix>:relay:d:<id>`: a download's bytes (bounded by `policy.max_file_bytes`),
//!   same TTL.
//! - A request is checked against the hash (key compared in constant time, wrong keys counted,
//!   the ticket left usable); the ticket is used up by one Lua script that deletes the hash
//!   only if it still exists — so exactly one request, on any replica, wins — and in the same
//!   step returns a download's bytes or stores an upload as `<prefix>:relay:r:<id>` (for as
//!   long as the ticket had left).
//! - The replica whose call waits listens to the topic `relay:<id>` of its inbox; the replica
//!   that stored the result sends it a wake-up there. The waiter also looks for the result
//!   once a second, so a wake-up lost while its subscription reconnected delays the call by at
//!   most that second instead of failing it. The waiter reads the stored result without
//!   removing it (its wait may be cancelled mid-read and restarted); the result is removed
//!   with the ticket when the call ends.
//! - A stream ticket (many POSTs) is published the same way but never used up: a replica
//!   that does not hold it checks the key against the hash and forwards each chunk (bounded
//!   by the ticket's cap) to the topic `relay-stream:<id>` of the owner's inbox, where the
//!   ticket's local channel takes it. Pub/sub keeps one sender's messages in order; the
//!   wrapper sends the next chunk only once this one was answered.
//! - A ticket may carry a `tag` (a background job's id, [`super::Relay::tag`]): the replica
//!   that receives a chunk or the result of a tagged ticket hands it to its
//!   [`super::TaggedUploads`] sink (the shared job store) instead of forwarding it.

use std::time::Duration;

use bytes::Bytes;
use redis::Script;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ticket::{Purpose, Refusal, Refusals, TicketBinding, TicketRefused, UploadError};
use crate::cluster::{Cluster, ClusterError, Listener, millis};

/// Delete the ticket hash if it exists (the single use); for a download also take its bytes;
/// for an upload also store ARGV[1] under KEYS[2] with TTL ARGV[2] ms.
/// Returns false/nil when another request used the ticket first.
const CLAIM_DOWNLOAD: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  local bytes = redis.call('GET', KEYS[2])
  redis.call('DEL', KEYS[2])
  if bytes then return bytes end
end
return false
";
/// The stored result lives as long as the ticket had left (its call cannot wait longer), at
/// least ARGV[2] ms when Redis reports no TTL.
const CLAIM_UPLOAD: &str = r"
local left = redis.call('PTTL', KEYS[1])
if redis.call('DEL', KEYS[1]) == 1 then
  if KEYS[2] then
    if left <= 0 then left = ARGV[2] end
    redis.call('SET', KEYS[2], ARGV[1], 'PX', left)
  end
  return 1
end
return 0
";
/// Tag a live ticket (never recreate a used one).
const TAG: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'tag', ARGV[1])
  return 1
end
return 0
";
/// Count a refusal on a live ticket (never recreate a used one).
const NOTE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
return 0
";

/// A live ticket as Redis has it.
#[derive(Debug, Clone)]
pub struct SharedTicket {
    pub binding: TicketBinding,
    pub owner: String,
    pub max_bytes: usize,
    /// What the creating replica tagged the ticket with ([`super::Relay::tag`]).
    pub tag: Option<String>,
}

/// The Redis side of the relay.
#[derive(Debug, Clone)]
pub struct SharedTickets {
    cluster: Cluster,
}

fn topic(id: &str) -> String {
    format!("relay:{id}")
}

/// The inbox topic of a stream ticket's forwarded chunks.
fn stream_topic(id: &str) -> String {
    format!("relay-stream:{id}")
}

/// An upload's outcome as stored for the waiting replica.
fn encode(result: &Result<Bytes, UploadError>) -> Vec<u8> {
    match result {
        Ok(bytes) => [b"ok\n".as_slice(), bytes].concat(),
        Err(UploadError::TooLarge { limit }) => format!("too_large\n{limit}").into_bytes(),
        Err(UploadError::Broken(why)) => format!("broken\n{why}").into_bytes(),
    }
}

fn decode(raw: Vec<u8>) -> Result<Bytes, UploadError> {
    let raw = Bytes::from(raw);
    let newline = raw.iter().position(|b| *b == b'\n').unwrap_or(raw.len());
    let body = raw.slice(newline.saturating_add(1).min(raw.len())..);
    match raw.get(..newline) {
        Some(b"ok") => Ok(body),
        Some(b"too_large") => Err(UploadError::TooLarge {
            limit: String::from_utf8_lossy(&body).parse().unwrap_or(0),
        }),
        _ => Err(UploadError::Broken(
            String::from_utf8_lossy(&body).into_owned(),
        )),
    }
}

impl SharedTickets {
    pub fn new(cluster: Cluster) -> SharedTickets {
        SharedTickets { cluster }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn replica_id(&self) -> &str {
        self.cluster.replica_id()
    }

    fn key(&self, kind: &str, id: &str) -> String {
        self.cluster.redis().key(&["relay", kind, id])
    }

    /// Listen for the wake-up of an upload to ticket `id` (before the ticket is published).
    pub fn listen(&self, id: &str) -> Listener {
        self.cluster.inbox().listen(&topic(id), 4)
    }

    /// Publish a new ticket (and a download's bytes) for `ttl`.
    pub async fn publish(
        &self,
        id: &str,
        binding: &TicketBinding,
        key_digest: &[u8; 32],
        max_bytes: usize,
        download: Option<&Bytes>,
        ttl: Duration,
    ) -> Result<(), ClusterError> {
        let ticket = self.key("t", id);
        let ttl_ms = millis(ttl);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&ticket)
            .arg("owner")
            .arg(self.cluster.replica_id())
            .arg("principal")
            .arg(&binding.principal)
            .arg("kasm_id")
            .arg(&binding.kasm_id)
            .arg("purpose")
            .arg(binding.purpose.as_str())
            .arg("max_bytes")
            .arg(max_bytes)
            .arg("key")
            .arg(hex::encode(key_digest))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&ticket)
            .arg(ttl_ms)
            .ignore();
        if let Some(bytes) = download {
            pipe.cmd("SET")
                .arg(self.key("d", id))
                .arg(bytes.as_ref())
                .arg("PX")
                .arg(ttl_ms)
                .ignore();
        }
        self.cluster
            .redis()
            .run(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// The purpose of ticket `id` if it is live anywhere in the cluster.
    pub async fn live_purpose(&self, id: &str) -> Result<Option<Purpose>, ClusterError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.key("t", id)).arg("purpose");
        let purpose: Option<String> = self.cluster.redis().query(cmd).await?;
        Ok(purpose.as_deref().and_then(Purpose::parse))
    }

    /// Listen for the chunks other replicas forward to stream ticket `id` (before it is
    /// published); at most `capacity` wait unread.
    pub fn listen_stream(&self, id: &str, capacity: usize) -> Listener {
        self.cluster.inbox().listen(&stream_topic(id), capacity)
    }

    /// Forward one chunk of stream ticket `id` to the inbox of its `owner`; false when no
    /// inbox got it (the owner is gone or reconnecting).
    pub async fn forward_chunk(
        &self,
        id: &str,
        owner: &str,
        chunk: &[u8],
    ) -> Result<bool, ClusterError> {
        self.cluster.send(owner, &stream_topic(id), chunk).await
    }

    /// Check a request for ticket `id` (`download`: a GET) without using the ticket up.
    pub async fn check(
        &self,
        id: &str,
        key: Option<&str>,
        download: bool,
    ) -> Result<SharedTicket, TicketRefused> {
        let ticket = self.key("t", id);
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(&ticket);
        let fields: std::collections::HashMap<String, String> =
            self.cluster.redis().query(cmd).await.map_err(unavailable)?;
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let Some(purpose) = Purpose::parse(&field("purpose")) else {
            return Err(TicketRefused::Unknown);
        };
        if purpose.is_download() != download {
            return Err(TicketRefused::Unknown);
        }
        let stored = hex::decode(field("key")).unwrap_or_default();
        let presented = Sha256::digest(key.unwrap_or_default().as_bytes());
        if stored.len() != 32 || !bool::from(presented.as_slice().ct_eq(&stored)) {
            self.note(id, Refusal::WrongKey).await;
            return Err(TicketRefused::WrongKey);
        }
        Ok(SharedTicket {
            binding: TicketBinding {
                principal: field("principal"),
                kasm_id: field("kasm_id"),
                purpose,
            },
            owner: field("owner"),
            max_bytes: field("max_bytes").parse().unwrap_or(0),
            tag: fields.get("tag").filter(|t| !t.is_empty()).cloned(),
        })
    }

    /// Tag live tickets `ids` with `tag` (one round trip).
    pub async fn tag(&self, ids: &[&str], tag: &str) -> Result<(), ClusterError> {
        let script = Script::new(TAG);
        let mut pipe = redis::pipe();
        // A pipeline does not load scripts by itself (EVALSHA would fail with NOSCRIPT).
        pipe.load_script(&script).ignore();
        for id in ids {
            pipe.invoke_script(script.key(self.key("t", id)).arg(tag))
                .ignore();
        }
        self.cluster
            .redis()
            .run(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// Use a checked download ticket up and take its bytes (`Unknown` if another request won).
    pub async fn claim_download(&self, id: &str) -> Result<Bytes, TicketRefused> {
        let keys = [self.key("t", id), self.key("d", id)];
        let bytes: Option<Vec<u8>> = self
            .cluster
            .redis()
            .run(|mut c| async move {
                Script::new(CLAIM_DOWNLOAD)
                    .key(&keys[0])
                    .key(&keys[1])
                    .invoke_async(&mut c)
                    .await
            })
            .await
            .map_err(unavailable)?;
        bytes.map(Bytes::from).ok_or(TicketRefused::Unknown)
    }

    /// Use a checked upload ticket up; with `result`, store it for the waiting replica and
    /// wake it (`owner`). False if another request used the ticket first.
    pub async fn claim_upload(
        &self,
        id: &str,
        owner: &str,
        result: Option<&Result<Bytes, UploadError>>,
        ttl: Duration,
    ) -> Result<bool, ClusterError> {
        let ticket = self.key("t", id);
        let stored = self.key("r", id);
        let payload = result.map(encode);
        let won: i64 = self
            .cluster
            .redis()
            .run(|mut c| async move {
                let script = Script::new(CLAIM_UPLOAD);
                let mut call = script.key(&ticket);
                if let Some(payload) = &payload {
                    call.key(&stored).arg(payload.as_slice()).arg(millis(ttl));
                }
                call.invoke_async(&mut c).await
            })
            .await?;
        if won == 1 && result.is_some() {
            match self.cluster.send(owner, &topic(id), b"").await {
                Ok(true) => {}
                // The waiter also polls: a lost wake-up only delays it.
                Ok(false) => {
                    tracing::debug!("relay: the waiting replica's inbox did not get the wake-up")
                }
                Err(e) => tracing::debug!(error = %e, "relay: wake-up not sent"),
            }
        }
        Ok(won == 1)
    }

    /// The stored outcome of an upload to ticket `id`. Read, never removed here: the waiting
    /// call's wait is cancelled and restarted (every progress tick), and a removing read
    /// whose reply is dropped with its future would lose the result for good. The key goes
    /// with the ticket ([`SharedTickets::forget`]) or its TTL.
    pub async fn stored_result(
        &self,
        id: &str,
    ) -> Result<Option<Result<Bytes, UploadError>>, ClusterError> {
        Ok(self
            .cluster
            .redis()
            .get(&self.key("r", id))
            .await?
            .map(decode))
    }

    /// Count a refusal on live ticket `id` (best effort).
    pub async fn note(&self, id: &str, refusal: Refusal) {
        let field = match refusal {
            Refusal::WrongKey => "wrong_key",
            Refusal::RateLimited => "rate_limited",
        };
        let ticket = self.key("t", id);
        let counted = self
            .cluster
            .redis()
            .run(|mut c| async move {
                Script::new(NOTE)
                    .key(&ticket)
                    .arg(field)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        if let Err(e) = counted {
            tracing::debug!(error = %e, "relay: refusal not counted");
        }
    }

    /// The refusals counted on ticket `id` (zero when unknown or unreachable).
    pub async fn refusals(&self, id: &str) -> Refusals {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.key("t", id))
            .arg("wrong_key")
            .arg("rate_limited");
        match self
            .cluster
            .redis()
            .query::<(Option<u32>, Option<u32>)>(cmd)
            .await
        {
            Ok((wrong_key, rate_limited)) => Refusals {
                wrong_key: wrong_key.unwrap_or(0),
                rate_limited: rate_limited.unwrap_or(0),
            },
            Err(_) => Refusals::default(),
        }
    }

    /// Remove everything of ticket `id` (the call ended), in the background.
    pub fn forget(&self, id: &str) {
        let keys = vec![self.key("t", id), self.key("d", id), self.key("r", id)];
        let redis = self.cluster.redis().clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = redis.del(&keys).await {
                    tracing::debug!(error = %e, "relay: ticket keys left to expire");
                }
            });
        }
    }
}

fn unavailable(e: ClusterError) -> TicketRefused {
    tracing::warn!(error = %e, "relay: the shared ticket table is unavailable");
    TicketRefused::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_results_round_trip() {
        let ok: Result<Bytes, UploadError> = Ok(Bytes::from_static(b"\x00a\nb"));
        assert_eq!(decode(encode(&ok)), ok);
        let big = Err(UploadError::TooLarge { limit: 7 });
        assert_eq!(decode(encode(&big)), big);
        let broken = Err(UploadError::Broken("cut".into()));
        assert_eq!(decode(encode(&broken)), broken);
    }
}
