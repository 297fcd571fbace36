//! The reaper: every `quotas.reaper_interval_s` it destroys the sessions created through this
//! server whose idle or absolute lifetime ended (`policy::lifetimes` decides), writes a
//! `reaper` audit event for each and counts it for `/metrics`. It runs only when a lifetime
//! is configured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::ToolDeps;
use super::usage_guard::session_ended;
use crate::policy::lifetimes::{Expiry, expiry};
use crate::usage::count_reaped;

/// Look once: destroy what expired. Returns how many were destroyed.
pub async fn sweep(deps: &ToolDeps) -> usize {
    let idle = deps.quotas.session_idle_timeout_s.map(Duration::from_secs);
    let max = deps.quotas.session_max_lifetime_s.map(Duration::from_secs);
    let now = Instant::now();
    let mut destroyed = 0;
    for session in deps.usage.all_tracked() {
        let verdict = expiry(
            now.saturating_duration_since(session.created),
            now.saturating_duration_since(session.last_used),
            idle,
            max,
        );
        if verdict == Expiry::Alive {
            continue;
        }
        let result = deps
            .kasm
            .destroy_kasm(&session.kasm_id, session.owner.as_deref())
            .await;
        let outcome = match &result {
            Ok(()) => "destroyed".to_string(),
            Err(e) => format!("destroy failed: {e}"),
        };
        crate::audit::record_event(
            "reaper",
            &session.principal,
            json!({
                "kasm_id": session.kasm_id,
                "rule": format!("quotas.session_{}", match verdict {
                    Expiry::Idle => "idle_timeout_s",
                    _ => "max_lifetime_s",
                }),
                "reason": verdict.as_str(),
                "outcome": outcome,
            }),
        );
        // A session Kasm no longer knows is gone too: stop tracking it either way unless the
        // call failed transiently.
        if result.as_ref().is_ok_or_gone() {
            session_ended(deps, &session.kasm_id).await;
            deps.jobs.end_session(&session.kasm_id).await;
            if result.is_ok() {
                count_reaped();
                destroyed += 1;
            }
        }
    }
    destroyed
}

trait GoneOk {
    fn is_ok_or_gone(&self) -> bool;
}

impl GoneOk for Result<&(), &crate::kasm::KasmError> {
    fn is_ok_or_gone(&self) -> bool {
        match self {
            Ok(()) => true,
            Err(e) => !e.is_transient(),
        }
    }
}

/// Start the reaper when a lifetime is configured (on the current Tokio runtime).
pub fn spawn(deps: Arc<ToolDeps>) -> Option<tokio::task::JoinHandle<()>> {
    let q = &deps.quotas;
    if q.session_idle_timeout_s.is_none() && q.session_max_lifetime_s.is_none() {
        return None;
    }
    let every = Duration::from_secs(q.reaper_interval_s.max(1));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sweep(&deps).await;
        }
    }))
}
