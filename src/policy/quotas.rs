//! Per-principal caps: given how many of a thing a principal holds and the configured
//! maximum, may it take one more? The counting lives in `usage` (behind a store trait); the
//! decision and its message (naming the limit and its configuration key) live here.

/// One of the counted things, with the configuration key of its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quota {
    /// Sessions created through this server and not yet destroyed (plus creations under way).
    Sessions,
    /// Tool calls running at once.
    Calls,
    /// `execute_kasm_command` calls running at once.
    Exec,
    /// Relay round trips waiting on their tickets at once.
    Tickets,
}

impl Quota {
    /// The configuration key of the cap.
    pub fn key(self) -> &'static str {
        match self {
            Quota::Sessions => "quotas.max_sessions",
            Quota::Calls => "quotas.max_concurrent_calls",
            Quota::Exec => "quotas.max_concurrent_exec",
            Quota::Tickets => "quotas.max_pending_tickets",
        }
    }

    /// What is counted, in words.
    pub fn what(self) -> &'static str {
        match self {
            Quota::Sessions => "sessions created through this server",
            Quota::Calls => "tool calls running at once",
            Quota::Exec => "commands running at once",
            Quota::Tickets => "relay transfers in flight at once",
        }
    }

    /// What the caller can do about it.
    fn hint(self) -> &'static str {
        match self {
            Quota::Sessions => {
                "destroy a session you no longer need (list_user_sessions shows them) and try again"
            }
            Quota::Calls | Quota::Exec | Quota::Tickets => "wait for one to finish and try again",
        }
    }
}

/// A cap reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quota reached: at most {max} {} per principal ({}); {}", .quota.what(), .quota.key(), .quota.hint())]
pub struct QuotaExceeded {
    pub quota: Quota,
    pub max: u32,
}

/// Whether a principal holding `in_use` may take one more under `max` (`None`: no cap).
pub fn admit(quota: Quota, max: Option<u32>, in_use: usize) -> Result<(), QuotaExceeded> {
    match max {
        Some(max) if in_use >= usize::try_from(max).unwrap_or(usize::MAX) => {
            Err(QuotaExceeded { quota, max })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        // (max, in use, admitted)
        let table = [
            (None, 0, true),
            (None, 1_000_000, true),
            (Some(1), 0, true),
            (Some(1), 1, false),
            (Some(3), 2, true),
            (Some(3), 3, false),
            (Some(3), 4, false),
        ];
        for quota in [Quota::Sessions, Quota::Calls, Quota::Exec, Quota::Tickets] {
            for (max, in_use, ok) in table {
                assert_eq!(
                    admit(quota, max, in_use).is_ok(),
                    ok,
                    "{quota:?} {max:?} {in_use}"
                );
            }
        }
        let text = admit(Quota::Exec, Some(2), 2).unwrap_err().to_string();
        assert!(
            text.contains("quotas.max_concurrent_exec") && text.contains("at most 2"),
            "{text}"
        );
        let text = admit(Quota::Sessions, Some(1), 1).unwrap_err().to_string();
        assert!(
            text.contains("quotas.max_sessions") && text.contains("destroy"),
            "{text}"
        );
    }
}
