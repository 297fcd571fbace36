//! `tools/list` served pre-serialised: the first page of the list depends only on the
//! caller's role and the protocol era (2026-07-28 adds `resultType`/`ttlMs`/`cacheScope`),
//! and the tool set, its schemas and the page size are fixed when the server is built — so
//! each (role, era) answer is serialised once, on first use, and written as-is afterwards.
//! Later pages (a client-chosen cursor) are built fresh: keying on the cursor would let a
//! client grow the cache.

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use serde_json::value::RawValue;

use crate::mcp::jsonrpc::{RequestId, success};
use crate::policy::Role;

/// The serialised first-page `result` of `tools/list`, per role and era.
#[derive(Default)]
pub(crate) struct ToolsListCache {
    /// `[role][era]`: era 0 is before 2026-07-28, 1 is 2026-07-28 (decorated).
    slots: [[OnceLock<Arc<RawValue>>; 2]; 3],
}

impl ToolsListCache {
    /// The cached result for `role`/`modern`, serialising `build()` the first time. None only
    /// if the value cannot be serialised (then the caller answers with the Value).
    pub(crate) fn get_or_build(
        &self,
        role: Role,
        modern: bool,
        build: impl FnOnce() -> Value,
    ) -> Option<Arc<RawValue>> {
        let slot = &self.slots[role_index(role)][usize::from(modern)];
        if let Some(raw) = slot.get() {
            return Some(raw.clone());
        }
        let raw: Arc<RawValue> = serde_json::value::to_raw_value(&build()).ok()?.into();
        Some(slot.get_or_init(|| raw).clone())
    }
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Viewer => 0,
        Role::Operator => 1,
        Role::Admin => 2,
    }
}

/// A success response whose `result` is already serialised: the exact text
/// `jsonrpc::success(id, result).to_string()` gives, built by copying bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResponse(String);

impl RawResponse {
    pub(crate) fn success(id: &RequestId, result: &RawValue) -> Self {
        // The envelope comes from `jsonrpc::success` itself, so its key order is whatever the
        // Value's map gives (sorted, or insertion order under serde_json's `preserve_order`):
        // `result` is last either way, so its `null` is swapped for the serialised result.
        let mut text = success(id, Value::Null).to_string();
        match text.strip_suffix("null}").map(str::len) {
            Some(head) => {
                text.truncate(head);
                text.reserve(result.get().len() + 1);
                text.push_str(result.get());
                text.push('}');
                RawResponse(text)
            }
            None => {
                let value = serde_json::from_str(result.get()).unwrap_or(Value::Null);
                RawResponse(success(id, value).to_string())
            }
        }
    }

    /// The response text (one JSON object).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The response text, moved out.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The response as a Value, for paths that carry Values (batches, the legacy `/sse`
    /// queue). Our own serialisation always parses; a failure would say so to the client.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or_else(|error| {
            tracing::error!(%error, "a pre-serialised response did not parse back");
            serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {
                "code": -32603, "message": "internal error: a cached answer could not be re-read"}})
        })
    }
}
