//! Lifetimes of sessions created through this server: a session idle (no tool call touched
//! it) for longer than `quotas.session_idle_timeout_s`, or older than
//! `quotas.session_max_lifetime_s`, has expired and the reaper destroys it; a keepalive
//! cannot extend a session past its absolute lifetime.

use std::time::Duration;

/// Whether a session lives on, and if not, which lifetime ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Alive,
    /// Idle longer than the idle timeout.
    Idle,
    /// Older than the absolute lifetime.
    Absolute,
}

impl Expiry {
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::Alive => "alive",
            Expiry::Idle => "idle_timeout",
            Expiry::Absolute => "max_lifetime",
        }
    }
}

/// The verdict for a session of `age` that was last used `idle` ago.
pub fn expiry(
    age: Duration,
    idle: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
) -> Expiry {
    if max_lifetime.is_some_and(|max| age >= max) {
        Expiry::Absolute
    } else if idle_timeout.is_some_and(|t| idle >= t) {
        Expiry::Idle
    } else {
        Expiry::Alive
    }
}

/// Why a keepalive is refused: the session reached its absolute lifetime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this session reached its maximum lifetime of {max_s} s (quotas.session_max_lifetime_s) and cannot be kept alive; it is about to be destroyed: create a new session"
)]
pub struct PastMaxLifetime {
    pub max_s: u64,
}

/// Whether a session of `age` may be kept alive, and how long it has left (`None`: no
/// absolute lifetime).
pub fn keepalive(
    age: Duration,
    max_lifetime: Option<Duration>,
) -> Result<Option<Duration>, PastMaxLifetime> {
    match max_lifetime {
        None => Ok(None),
        Some(max) if age >= max => Err(PastMaxLifetime {
            max_s: max.as_secs(),
        }),
        Some(max) => Ok(Some(max.saturating_sub(age))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn verdicts() {
        // (age, idle, idle timeout, max lifetime, verdict)
        let table = [
            (s(10), s(10), None, None, Expiry::Alive),
            (s(10), s(5), Some(s(6)), None, Expiry::Alive),
            (s(10), s(6), Some(s(6)), None, Expiry::Idle),
            (s(10), s(0), None, Some(s(10)), Expiry::Absolute),
            (s(9), s(0), None, Some(s(10)), Expiry::Alive),
            (s(20), s(20), Some(s(5)), Some(s(10)), Expiry::Absolute),
        ];
        for (age, idle, t, max, want) in table {
            assert_eq!(
                expiry(age, idle, t, max),
                want,
                "{age:?} {idle:?} {t:?} {max:?}"
            );
        }
    }

    #[test]
    fn keepalive_stops_at_the_max_lifetime() {
        assert_eq!(keepalive(s(5), None), Ok(None));
        assert_eq!(keepalive(s(5), Some(s(8))), Ok(Some(s(3))));
        let err = keepalive(s(8), Some(s(8))).unwrap_err();
        assert!(err.to_string().contains("quotas.session_max_lifetime_s"));
    }
}
