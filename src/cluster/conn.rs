//! The connection to Redis: one multiplexed, self-reconnecting connection per replica
//! (`redis::aio::ConnectionManager`), the key prefix, and a time limit on every operation so a
//! request that needs shared state fails within `cluster.op_timeout_ms` instead of hanging.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, FromRedisValue};
use secrecy::ExposeSecret;

use super::error::ClusterError;
use crate::config::ClusterConfig;

/// A Redis client with its connection manager and key prefix. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    manager: ConnectionManager,
    prefix: String,
    op_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold the password.
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// The client for `config.redis_url`; connects lazily (the first operation, and every one
    /// after a lost connection, reconnects). Needs a Tokio runtime. `None` without a URL.
    pub fn from_config(config: &ClusterConfig) -> Result<Option<Redis>, ClusterError> {
        let Some(url) = &config.redis_url else {
            return Ok(None);
        };
        let client = Client::open(url.expose_secret())
            .map_err(|e| ClusterError::Unavailable(format!("cluster.redis_url: {e}")))?;
        let op_timeout = config.op_timeout();
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)?;
        Ok(Some(Redis {
            client,
            manager,
            prefix: config.key_prefix.clone(),
            op_timeout,
            connect_timeout,
        }))
    }

    /// `<prefix>:<parts joined by ':'>`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Run one command (or pipeline / script invocation) under the operation time limit.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, ClusterError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.op_timeout, op(self.manager.clone())).await {
            Ok(result) => result.map_err(ClusterError::from),
            Err(_) => Err(ClusterError::Timeout(self.op_timeout)),
        }
    }

    /// Run a prepared command.
    pub async fn query<T: FromRedisValue + Send>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, ClusterError> {
        self.run(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// `PING`: whether Redis answers now.
    pub async fn ping(&self) -> Result<(), ClusterError> {
        let pong: String = self.query(redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(ClusterError::Corrupt(format!("PING answered {pong:?}")))
        }
    }

    /// `SET key value PX ttl`.
    pub async fn set_px(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), ClusterError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(millis(ttl));
        self.query::<()>(cmd).await
    }

    /// `SET key value NX PX ttl`: true when this call set it (the first one).
    pub async fn set_nx_px(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, ClusterError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("NX").arg("PX").arg(millis(ttl));
        let set: Option<String> = self.query(cmd).await?;
        Ok(set.is_some())
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ClusterError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.query(cmd).await
    }

    /// `DEL keys…`: how many existed.
    pub async fn del(&self, keys: &[String]) -> Result<u64, ClusterError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys);
        self.query(cmd).await
    }

    /// `EXISTS key`.
    pub async fn exists(&self, key: &str) -> Result<bool, ClusterError> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key);
        let n: u64 = self.query(cmd).await?;
        Ok(n > 0)
    }

    /// `PUBLISH channel payload`: how many subscribers received it.
    pub async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64, ClusterError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        self.query(cmd).await
    }
}

/// A TTL in whole milliseconds, at least 1 (`PX 0` is an error).
pub fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
