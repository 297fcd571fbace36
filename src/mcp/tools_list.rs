//! `tools/list` served pre-serialised: the first page of the list depends only on the
//! caller's role and the protocol era (2026-07-28 adds `resultType`/`ttlMs`/`cacheScope`),
//! and the tool set, its schemas and the page size are fixed when the server is built — so
//! each (role, era) answer is serialised once, on first use, and written as-is afterwards.
//! Later pages (a client-chosen cursor) are built fresh: keying on the cursor would let a
//! client grow the cache.

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use serde_json::value::RawValue;

use crate::mcp::jsonrpc::RequestId;
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
        Self::success_text(id, result.get())
    }

    /// The success response with `result`, a serialised JSON value: the envelope written
    /// around it in the key order of `jsonrpc::success`'s map (serde_json's: sorted, `result`
    /// last), pinned by `tests::the_envelope_is_what_success_writes`.
    pub(crate) fn success_text(id: &RequestId, result: &str) -> Self {
        let mut text = String::with_capacity(result.len() + 48);
        text.push_str("{\"id\":");
        match id {
            RequestId::Number(n) => {
                use std::fmt::Write;
                let _ = write!(text, "{n}");
            }
            RequestId::Text(s) => {
                text.push_str(&serde_json::to_string(s.as_str()).unwrap_or_default())
            }
        }
        text.push_str(",\"jsonrpc\":\"2.0\",\"result\":");
        text.push_str(result);
        text.push('}');
        RawResponse(text)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::success;

    /// The envelope written around a serialised result is the text `jsonrpc::success`'s Value
    /// serialises to, for every kind of id.
    #[test]
    fn the_envelope_is_what_success_writes() {
        let results = [
            serde_json::json!({"content": [{"type": "text", "text": "a\n\"b\""}], "isError": false}),
            serde_json::json!({}),
            serde_json::json!(null),
        ];
        let ids = [
            RequestId::Number(0),
            RequestId::Number(-1),
            RequestId::Number(i64::MAX),
            RequestId::Number(i64::MIN),
            RequestId::Text(String::new()),
            RequestId::Text("req-1".into()),
            RequestId::Text("q\"uote\\ \u{1} \u{7f} é ✓ </script>".into()),
        ];
        for id in &ids {
            for result in &results {
                let expected = success(id, result.clone()).to_string();
                let raw = serde_json::value::to_raw_value(result).unwrap();
                assert_eq!(RawResponse::success(id, &raw).as_str(), expected);
                assert_eq!(
                    RawResponse::success_text(id, &result.to_string()).as_str(),
                    expected
                );
            }
        }
    }
}
