//! Global rate limits: GCRA (the algorithm of governor and redis-cell) done atomically in
//! Redis by one Lua script, so N replicas together allow the configured rate, not N times it.
//! The script keeps one integer per key — the theoretical arrival time (TAT) in microseconds
//! of Redis's own clock (`TIME`, so replica clocks do not matter) — with a TTL of the time
//! until the key is back to a full burst.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::conn::Redis;
use super::error::ClusterError;

/// KEYS[1]: the limiter key. ARGV: emission interval (µs per cell), burst, cells wanted.
/// Returns {1, 0} when allowed (and spends the cells), {0, µs to wait} when not.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + n * interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return {1, 0}
";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit: this long until the cells would fit.
    Wait(Duration),
}

/// One global limit: `burst` cells at once, refilled at one per `interval`.
#[derive(Clone)]
pub struct GlobalLimit {
    redis: Redis,
    script: Arc<Script>,
    /// Key prefix of this limit (`<prefix>:rl:<name>`).
    base: String,
    interval_us: u64,
    burst: u32,
}

impl GlobalLimit {
    /// `name` tells limits apart in Redis (`ip`, `principal`).
    pub fn new(redis: &Redis, name: &str, interval: Duration, burst: u32) -> GlobalLimit {
        GlobalLimit {
            base: redis.key(&["rl", name]),
            redis: redis.clone(),
            script: Arc::new(Script::new(GCRA)),
            interval_us: u64::try_from(interval.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
            burst: burst.max(1),
        }
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Spend `n` cells for `key` (all or none).
    pub async fn check(&self, key: &str, n: u32) -> Result<Verdict, ClusterError> {
        let full_key = format!("{}:{key}", self.base);
        let script = self.script.clone();
        let (interval, burst) = (self.interval_us, self.burst);
        let (allowed, wait_us): (i64, i64) = self
            .redis
            .run(|mut c| async move {
                script
                    .key(full_key)
                    .arg(interval)
                    .arg(burst)
                    .arg(n)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if allowed == 1 {
            Ok(Verdict::Allowed)
        } else {
            let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0));
            Ok(Verdict::Wait(wait))
        }
    }
}
