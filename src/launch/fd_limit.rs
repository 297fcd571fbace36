//! Raise the open-file soft limit to the hard limit at start-up: every client connection,
//! open SSE stream and pooled Kasm connection is a file descriptor, and the usual soft limit
//! (1,024) would refuse connections long before memory or CPU run out. Raising the soft limit
//! up to the hard one needs no privilege.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The open-file limits after start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

/// Raise `RLIMIT_NOFILE`'s soft limit to its hard limit and log the result.
pub fn raise_fd_limit() -> Option<FdLimit> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let now = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "cannot raise the open-file soft limit to the hard limit; connections beyond the soft limit will be refused (raise it with `ulimit -n` or LimitNOFILE=)");
                soft
            }
        }
    } else {
        soft
    };
    tracing::info!(
        before = soft,
        now,
        hard,
        "open-file limit (each connection and SSE stream uses one)"
    );
    Some(FdLimit {
        before: soft,
        now,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limit = raise_fd_limit().unwrap();
        assert_eq!(limit.now, limit.hard);
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((soft, hard), (limit.hard, limit.hard));
    }
}
