//! Lifecycle: protocol versions, version negotiation for `initialize`, the server's identity
//! and the capabilities it advertises.

use serde_json::{Map, Value, json};

/// Revisions that open with `initialize` (the "legacy" era), oldest first.
pub const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest legacy revision: the answer when a client asks for one we do not know.
pub const LATEST_LEGACY_VERSION: &str = "2025-11-25";
/// The stateless revision (per-request `_meta`, `server/discover`).
pub const MODERN_VERSION: &str = "2026-07-28";
/// The one revision that allows JSON-RPC batch arrays.
pub const BATCH_VERSION: &str = "2025-03-26";

/// Every version this server speaks, newest first (as listed in `server/discover` and in
/// `UnsupportedProtocolVersionError.data.supported`).
pub fn supported_versions() -> Vec<&'static str> {
    let mut all = vec![MODERN_VERSION];
    all.extend(LEGACY_VERSIONS.iter().rev());
    all
}

pub fn is_legacy_version(version: &str) -> bool {
    LEGACY_VERSIONS.contains(&version)
}

/// The version `initialize` answers with: the requested one when supported (the spec says
/// MUST echo it), otherwise the latest legacy revision.
pub fn negotiate(requested: &str) -> &'static str {
    LEGACY_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(LATEST_LEGACY_VERSION)
}

/// Name, version and optional title/instructions shown to clients.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub name: String,
    pub version: String,
    pub title: Option<String>,
    pub instructions: Option<String>,
}

impl ServerIdentity {
    /// The `Implementation` object (`serverInfo`).
    pub fn server_info(&self) -> Value {
        let mut info = json!({ "name": self.name, "version": self.version });
        if let (Some(title), Some(obj)) = (&self.title, info.as_object_mut()) {
            obj.insert("title".into(), json!(title));
        }
        info
    }
}

/// Which optional features are registered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    pub resources: bool,
    pub resource_subscriptions: bool,
    pub prompts: bool,
    pub completions: bool,
    /// Some tool may run as an MCP task.
    pub tasks: bool,
}

/// The one legacy revision with the tasks utility.
pub const TASKS_VERSION: &str = "2025-11-25";

/// The 2025-11-25 `tasks` capability: list, cancel and task-augmented `tools/call`.
pub fn tasks_capability() -> Value {
    json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } })
}

/// `ServerCapabilities`. `legacy` adds what only the initialize-based revisions have
/// (`logging`, resource subscriptions).
pub fn capabilities(features: Features, legacy: bool) -> Value {
    let mut caps = Map::new();
    caps.insert("tools".into(), json!({ "listChanged": false }));
    if legacy {
        caps.insert("logging".into(), json!({}));
    }
    if features.resources {
        let mut resources = json!({ "listChanged": false });
        if legacy
            && features.resource_subscriptions
            && let Some(obj) = resources.as_object_mut()
        {
            obj.insert("subscribe".into(), json!(true));
        }
        caps.insert("resources".into(), resources);
    }
    if features.prompts {
        caps.insert("prompts".into(), json!({ "listChanged": false }));
    }
    if features.completions {
        caps.insert("completions".into(), json!({}));
    }
    if features.tasks && !legacy {
        caps.insert(
            "extensions".into(),
            json!({ "io.modelcontextprotocol/tasks": {} }),
        );
    }
    Value::Object(caps)
}

/// The `InitializeResult`.
pub fn initialize_result(identity: &ServerIdentity, features: Features, version: &str) -> Value {
    let mut caps = capabilities(features, true);
    if features.tasks
        && version == TASKS_VERSION
        && let Some(obj) = caps.as_object_mut()
    {
        obj.insert("tasks".into(), tasks_capability());
    }
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": caps,
        "serverInfo": identity.server_info(),
    });
    if let (Some(instructions), Some(obj)) = (&identity.instructions, result.as_object_mut()) {
        obj.insert("instructions".into(), json!(instructions));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_echoes_known_versions_and_falls_back_to_latest() {
        let table = [
            ("2024-11-05", "2024-11-05"),
            ("2025-03-26", "2025-03-26"),
            ("2025-06-18", "2025-06-18"),
            ("2025-11-25", "2025-11-25"),
            ("2026-07-28", "2025-11-25"),
            ("1999-01-01", "2025-11-25"),
            ("", "2025-11-25"),
            ("draft", "2025-11-25"),
        ];
        for (requested, answered) in table {
            assert_eq!(negotiate(requested), answered, "requested {requested:?}");
        }
    }

    #[test]
    fn supported_versions_are_newest_first_and_complete() {
        assert_eq!(
            supported_versions(),
            vec![
                "2026-07-28",
                "2025-11-25",
                "2025-06-18",
                "2025-03-26",
                "2024-11-05"
            ]
        );
    }

    #[test]
    fn capabilities_only_advertise_registered_features() {
        let none = capabilities(Features::default(), true);
        assert_eq!(none, json!({"tools":{"listChanged":false},"logging":{}}));
        let all = Features {
            resources: true,
            resource_subscriptions: true,
            prompts: true,
            completions: true,
            tasks: true,
        };
        let legacy = capabilities(all, true);
        assert!(legacy.get("extensions").is_none());
        assert!(
            capabilities(all, false)["extensions"]["io.modelcontextprotocol/tasks"].is_object()
        );
        assert_eq!(legacy["resources"]["subscribe"], json!(true));
        assert!(legacy.get("prompts").is_some() && legacy.get("completions").is_some());
        let modern = capabilities(all, false);
        assert!(modern.get("logging").is_none());
        assert!(modern["resources"].get("subscribe").is_none());
    }

    #[test]
    fn initialize_result_carries_identity_and_instructions() {
        let identity = ServerIdentity {
            name: "kasm-mcp".into(),
            version: "1.2.3".into(),
            title: Some("Kasm".into()),
            instructions: Some("Use the tools.".into()),
        };
        let r = initialize_result(&identity, Features::default(), "2025-06-18");
        assert_eq!(r["protocolVersion"], "2025-06-18");
        assert_eq!(
            r["serverInfo"],
            json!({"name":"kasm-mcp","version":"1.2.3","title":"Kasm"})
        );
        assert_eq!(r["instructions"], "Use the tools.");
    }
}
