//! Hostile-client tests (issue 8): each reproduces an attack on the server's resources — slow
//! and idle connections under a low file-descriptor limit, keep-alive bursts of early
//! refusals, oversized and fan-out batches, unread legacy streams, relay floods — and checks
//! the server's own decision. Servers run as child processes where memory or file
//! descriptors are measured (so other tests in this binary do not blur the figures).

mod batches;
mod child;
mod connections;
mod first_bytes;
mod keep_alive;
mod legacy_queue;
mod relay_flood;
mod watcher;
