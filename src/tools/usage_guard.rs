//! Taking a quota slot for a call: a [`Slot`] when the principal is under the cap, else a
//! refusal that names the limit and its configuration key, recorded as a denial in the
//! call's audit event and as a `quota` audit event.
//!
//! With `[cluster]`, the concurrency caps (calls, exec, tickets) are also taken as leases in
//! Redis ([`crate::cluster::Leases`]), so N replicas together allow the configured figure.
//! The sessions cap counts the sessions this replica tracks and stays per replica.

use serde_json::json;

use super::ToolDeps;
use crate::cluster::Lease;
use crate::mcp::CallContext;
use crate::policy::quotas::{Quota, QuotaExceeded};
use crate::usage::{Permit, acquire};

/// A held quota slot; dropping it gives the slot back (here and in Redis).
#[must_use]
#[derive(Debug)]
pub struct Slot {
    _local: Permit,
    _shared: Option<Lease>,
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
    let local = acquire(&deps.usage, principal, quota, max)
        .map_err(|e| refuse(ctx, quota, e.max, e.to_string()))?;
    let shared = match (&deps.shared_quotas, max) {
        (Some(leases), Some(max)) if quota != Quota::Sessions => {
            let owner = hex::encode(principal.as_bytes());
            match leases.take(&[quota.key(), &owner], max).await {
                Ok(Some(lease)) => Some(lease),
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
        _shared: shared,
    })
}
