//! Taking a quota slot for a call: a [`Permit`] when the principal is under the cap, else a
//! refusal that names the limit and its configuration key, recorded as a denial in the
//! call's audit event and as a `quota` audit event.

use serde_json::json;

use super::ToolDeps;
use crate::mcp::CallContext;
use crate::policy::quotas::Quota;
use crate::usage::{Permit, acquire};

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

/// Take one `quota` slot for the caller; the refusal is the message for the caller
/// (`ToolError::new` it).
pub fn take(deps: &ToolDeps, ctx: &CallContext, quota: Quota) -> Result<Permit, String> {
    let principal = &ctx.principal.name;
    acquire(&deps.usage, principal, quota, cap(deps, quota)).map_err(|e| {
        crate::audit::record_event(
            "quota",
            principal,
            json!({
                "decision": "deny",
                "rule": quota.key(),
                "max": e.max,
                "reason": e.to_string(),
                "request_id": ctx.audit.snapshot().request_id,
            }),
        );
        let message = e.to_string();
        ctx.audit.deny(quota.key(), &message);
        message
    })
}
