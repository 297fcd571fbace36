//! Caps on open connections, in total and per client address, checked by the accept loop
//! before a connection gets any work; and fitting the total cap under the process's
//! file-descriptor limit so that `accept` never fails with "Too many open files".

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::ConnectionsConfig;

/// File descriptors kept free for everything that is not a client connection (Kasm calls,
/// session processes, log files, the listener itself).
pub const RESERVED_FDS: u64 = 64;

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} connections are open (connections.max_open)")]
    Total(usize),
    #[error("{0} connections are open from this address (connections.max_open_per_ip)")]
    PerIp(usize),
}

#[derive(Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The open-connection counters.
pub struct ConnectionLimits {
    max_open: usize,
    /// 0: no per-address cap.
    max_open_per_ip: usize,
    open: Mutex<Open>,
    last_warning_s: AtomicU64,
}

impl ConnectionLimits {
    /// From `[connections]`, with the total lowered to what `fd_limit` (the usable soft
    /// limit on open files, if known) leaves after [`RESERVED_FDS`].
    pub fn new(config: &ConnectionsConfig, fd_limit: Option<u64>) -> Self {
        let mut max_open = config.max_open;
        if let Some(limit) = fd_limit {
            let usable =
                usize::try_from(limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
            if usable < max_open {
                tracing::warn!(
                    configured = max_open,
                    effective = usable,
                    fd_limit = limit,
                    "connections.max_open is above what the open-file limit allows; using the lower value (raise `ulimit -n` to allow more)"
                );
                max_open = usable;
            }
        }
        ConnectionLimits {
            max_open,
            max_open_per_ip: config.max_open_per_ip.min(max_open),
            open: Mutex::new(Open::default()),
            last_warning_s: AtomicU64::new(0),
        }
    }

    /// The cap on open connections in force.
    pub fn max_open(&self) -> usize {
        self.max_open
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a new connection from `ip`, or say why it must be closed at once.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let mut open = self.lock();
        if open.total >= self.max_open {
            return Err(Refusal::Total(open.total));
        }
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_open_per_ip > 0 && from_ip >= self.max_open_per_ip {
            return Err(Refusal::PerIp(from_ip));
        }
        open.total += 1;
        open.per_ip.insert(ip, from_ip + 1);
        Ok(ConnectionPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    fn close(&self, ip: IpAddr) {
        let mut open = self.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.per_ip.remove(&ip);
            }
        }
    }

    /// Log a refusal, at most once per 10 s (a flood must not flood the log).
    pub fn warn_refused(&self, refusal: Refusal) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last_warning_s.load(Ordering::Relaxed);
        if now >= last.saturating_add(10)
            && self
                .last_warning_s
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(reason = %refusal, "refusing new connections (further refusals in the next 10 s are not logged)");
        }
    }
}

/// One counted connection; dropping it releases the slot.
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.limits.close(self.ip);
    }
}

/// Raise the soft open-file limit to the hard limit (as Go's runtime does) and return the
/// soft limit in force, or None when it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        tracing::info!(from = soft, to = hard, "raised the open-file limit");
        return Some(hard);
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_open: usize, per_ip: usize, fd: Option<u64>) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits::new(
            &ConnectionsConfig {
                max_open,
                max_open_per_ip: per_ip,
                ..ConnectionsConfig::default()
            },
            fd,
        ))
    }

    #[test]
    fn per_ip_and_total_caps_release_on_drop() {
        let l = limits(3, 2, None);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = l.try_open(a).unwrap();
        let _a2 = l.try_open(a).unwrap();
        assert_eq!(l.try_open(a).err(), Some(Refusal::PerIp(2)));
        let _b1 = l.try_open(b).unwrap();
        assert_eq!(l.try_open(b).err(), Some(Refusal::Total(3)));
        drop(a1);
        assert_eq!(l.open(), 2);
        assert!(l.try_open(b).is_ok());
    }

    #[test]
    fn total_fits_under_the_fd_limit_and_zero_per_ip_is_off() {
        let l = limits(4096, 0, Some(256));
        assert_eq!(l.max_open(), 256 - RESERVED_FDS as usize);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..l.max_open()).map(|_| l.try_open(ip).unwrap()).collect();
        assert!(l.try_open(ip).is_err());
        drop(held);
        assert_eq!(l.open(), 0);
    }
}
