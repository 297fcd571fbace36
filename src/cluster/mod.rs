//! Several replicas, one state: the Redis (or Valkey) side of `[cluster]`.
//!
//! Without `cluster.redis_url` nothing here runs and every piece of cross-request state stays
//! in memory in one process. With it, each replica builds one [`Cluster`] at start:
//!
//! - [`Redis`] (`conn.rs`): a multiplexed connection that reconnects by itself
//!   (`redis::aio::ConnectionManager`), every operation under `cluster.op_timeout_ms`, every
//!   key under `cluster.key_prefix`. No `KEYS`/`SCAN` anywhere: every record is found by its
//!   own key.
//! - [`Inbox`] (`inbox.rs`): the replica's pub/sub channel. Work that waits on one replica
//!   (a tool call waiting for its relay upload, a legacy SSE stream) listens to a *topic*;
//!   another replica that receives what it waits for stores the data in a key (when it must
//!   not be lost) and sends the topic a message through [`Cluster::send`].
//! - liveness (`liveness.rs`): a heartbeat key per replica, so the others can tell a replica
//!   that died ([`Cluster::is_alive`]).
//! - [`GlobalLimit`] (`gcra.rs`): GCRA rate limits in one Lua script, shared by all replicas.
//! - [`Leases`] (`leases.rs`): global concurrency slots (the `[quotas]` caps, the legacy
//!   SSE stream caps) held as renewed leases in a sorted set, so a crashed replica's slots
//!   expire.
//! - [`SessionCount`] (`sessions.rs`): `quotas.max_sessions` over every replica (sessions
//!   created and not destroyed, plus creations under way as leases).
//!
//! Who uses it: `relay` (tickets in `<prefix>:relay:*`, results handed to the waiting replica),
//! `transport` (legacy SSE routing in `<prefix>:sse:*`, ended Streamable HTTP sessions in
//! `<prefix>:ended:*`, client capabilities in `<prefix>:client:*`), `http::rate_limit`
//! (`<prefix>:rl:*`), `transport::relay` (`<prefix>:rl:relay-ticket:*`), `mcp::tasks::redis`
//! (`<prefix>:task:*`), `jobs::redis` (`<prefix>:job:*`), `tools::usage_guard`
//! (`<prefix>:lease:*`, `<prefix>:sessions:*`, `<prefix>:session-owner:*`),
//! `transport::legacy_sse` (`<prefix>:lease:legacy_sse.*`) and the readiness probe in
//! `launch`.
//!
//! Adding a Redis implementation of another store: keep the in-memory trait implementation as
//! the default and add one that (as `RedisTaskStore` and `RedisJobs` do)
//! - stores each record under `<prefix>:<kind>:<id>` with a TTL (the time the record would be
//!   reaped after) and changes it with a small Lua script (or a compare-and-set), so two
//!   replicas never overwrite each other's state change (e.g. `running → cancelled`);
//! - keeps a per-principal index as a sorted set (`<prefix>:<kind>:…:<hex(principal)>`,
//!   trimmed with `ZREMRANGEBYSCORE`) for listings and counts — never `KEYS`;
//! - announces each change with `Cluster::broadcast`, and has its waiters re-read the record
//!   at least once a second, so a lost pub/sub message costs latency, not correctness.

mod conn;
mod error;
mod gcra;
mod handle;
mod inbox;
mod leases;
mod liveness;
mod sessions;

pub use conn::{Redis, millis};
pub use error::ClusterError;
pub use gcra::{GlobalLimit, Verdict};
pub use handle::Cluster;
pub use inbox::{Inbox, Listener};
pub use leases::{Lease, Leases};
pub use sessions::{Creating, SessionCount, SharedQuotas};
