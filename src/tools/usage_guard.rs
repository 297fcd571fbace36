//! Taking a quota slot for a call: a [`Slot`] when the principal is under the cap, else a
//! refusal that names the limit and its configuration key, recorded as a denial in the
//! call's audit event and as a `quota` audit event.
//!
//! With `[cluster]`, the concurrency caps (calls, exec, tickets) are also taken as leases in
//! Redis ([`crate::cluster::Leases`]), so N replicas together allow the configured figure.
//! The sessions cap is counted in Redis only ([`crate::cluster::SessionCount`]): a session
//! created on one replica and destroyed through another must not stay counted on the first,
//! so the per-replica tracking does not decide it. [`Slot::created`] and [`session_ended`]
//! keep that count.

use serde_json::json;

use super::ToolDeps;
use crate::cluster::{Creating, Lease};
use crate::mcp::CallContext;
use crate::policy::quotas::{Quota, QuotaExceeded};
use crate::usage::{Permit, acquire};

/// A held quota slot; dropping it gives the slot back (here and in Redis).
#[must_use]
#[derive(Debug)]
pub struct Slot {
    _local: Permit,
    shared: Option<Shared>,
}

/// The part of a [`Slot`] held in Redis.
#[derive(Debug)]
enum Shared {
    Lease(#[allow(dead_code)] Lease),
    Creating(Creating),
}

impl Slot {
    /// The creation this `quotas.max_sessions` slot was taken for made session `kasm_id`.
    /// With `[cluster]` the session counts from now on instead of the creation (without,
    /// the session is counted by [`crate::usage::UsageStore::track`]).
    pub async fn created(self, deps: &ToolDeps, kasm_id: &str) {
        let (Some(Shared::Creating(creating)), Some(shared)) = (self.shared, &deps.shared_quotas)
        else {
            return;
        };
        if let Err(e) = shared.sessions.commit(creating, kasm_id).await {
            tracing::warn!(kasm_id, error = %e, "a created session could not be counted for quotas.max_sessions; it is not counted over the replicas");
        }
    }
}

/// Session `kasm_id` was destroyed (or found gone) through this server: it no longer counts
/// towards `quotas.max_sessions`, here and, with `[cluster]`, on every replica.
pub async fn session_ended(deps: &ToolDeps, kasm_id: &str) {
    deps.usage.forget(kasm_id);
    if let Some(shared) = &deps.shared_quotas
        && let Err(e) = shared.sessions.forget(kasm_id).await
    {
        tracing::warn!(kasm_id, error = %e, "a destroyed session could not be uncounted for quotas.max_sessions");
    }
}

/// `[cluster]`, at the `quotas.max_sessions` cap: the principal's counted sessions that Kasm
/// no longer knows (they ended outside this server — Kasm's own expiry, its admin UI — while
/// no replica tracked them, e.g. after the replica that created them restarted) are
/// forgotten, so they cannot hold the cap for ever. Only when refusing, at most one
/// `get_kasm_status` per counted session; only Kasm's "not found" forgets (an error keeps
/// the count), through [`session_ended`]. Returns how many Kasm no longer knows.
async fn forget_vanished_sessions(deps: &ToolDeps, principal: &str) -> usize {
    let Some(shared) = &deps.shared_quotas else {
        return 0;
    };
    let counted = match shared.sessions.counted(principal).await {
        Ok(counted) => counted,
        Err(e) => {
            tracing::warn!(error = %e, "the sessions counted for quotas.max_sessions could not be read");
            return 0;
        }
    };
    let mut forgotten = 0;
    for kasm_id in counted {
        // Without a user id: the API key sees every session, so "not found" means gone.
        let answer = deps.kasm.get_kasm_status(&kasm_id, None).await;
        if matches!(answer, Err(crate::kasm::KasmError::NotFound { .. })) {
            tracing::info!(kasm_id = %kasm_id, "a session Kasm no longer knows is uncounted for quotas.max_sessions");
            session_ended(deps, &kasm_id).await;
            forgotten += 1;
        }
    }
    forgotten
}

/// The cap of `quota` from `[quotas]`.
fn cap(deps: &ToolDeps, quota: Quota) -> Option<u32> {
    let q = &deps.quotas;
    match quota {
        Quota::Sessions => q.max_sessions,
        Quota::Calls => q.max_concurrent_calls,
        Quota::Exec => q.max_concurrent_exec,
        Quota::Tickets => q.max_pending_tickets,
    }
}

/// Record and phrase a refusal.
fn refuse(ctx: &CallContext, quota: Quota, max: u32, message: String) -> String {
    crate::audit::record_event(
        "quota",
        &ctx.principal.name,
        json!({
            "decision": "deny",
            "rule": quota.key(),
            "max": max,
            "reason": message,
            "request_id": ctx.audit.snapshot().request_id,
        }),
    );
    ctx.audit.deny(quota.key(), &message);
    message
}

/// Take one `quota` slot for the caller; the refusal is the message for the caller
/// (`ToolError::new` it).
pub async fn take(deps: &ToolDeps, ctx: &CallContext, quota: Quota) -> Result<Slot, String> {
    let principal = &ctx.principal.name;
    let max = cap(deps, quota);
    // With [cluster] the session cap is decided in Redis alone.
    let local_max = match (&deps.shared_quotas, quota) {
        (Some(_), Quota::Sessions) => None,
        _ => max,
    };
    let local = acquire(&deps.usage, principal, quota, local_max)
        .map_err(|e| refuse(ctx, quota, e.max, e.to_string()))?;
    let shared = match (&deps.shared_quotas, max) {
        (Some(shared), Some(max)) => {
            let owner = hex::encode(principal.as_bytes());
            let taken = match quota {
                Quota::Sessions => match shared.sessions.take(principal, max).await {
                    // At the cap: sessions Kasm no longer knows must not hold it.
                    Ok(None) if forget_vanished_sessions(deps, principal).await > 0 => {
                        shared.sessions.take(principal, max).await
                    }
                    other => other,
                }
                .map(|c| c.map(Shared::Creating)),
                _ => shared
                    .leases
                    .take(&[quota.key(), &owner], max)
                    .await
                    .map(|l| l.map(Shared::Lease)),
            };
            match taken {
                Ok(Some(held)) => Some(held),
                Ok(None) => {
                    let e = QuotaExceeded { quota, max };
                    return Err(refuse(
                        ctx,
                        quota,
                        max,
                        format!("{e} (counted over every replica)"),
                    ));
                }
                Err(e) => {
                    return Err(refuse(
                        ctx,
                        quota,
                        max,
                        format!("the quota {} cannot be checked: {e}", quota.key()),
                    ));
                }
            }
        }
        _ => None,
    };
    Ok(Slot {
        _local: local,
        shared,
    })
}
