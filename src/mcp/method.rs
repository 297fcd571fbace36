//! The MCP method names this server knows, as one enum: parsed once from a message's `method`,
//! so handlers match on variants instead of string literals. A name that is not here parses to
//! `None` and is answered "method not found" (or ignored, for a notification).

/// A JSON-RPC method (request or notification) of the MCP protocol that this server handles
/// or meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Initialize,
    Ping,
    ServerDiscover,
    ToolsList,
    ToolsCall,
    LoggingSetLevel,
    ResourcesList,
    ResourcesTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    PromptsList,
    PromptsGet,
    CompletionComplete,
    TasksGet,
    TasksResult,
    TasksList,
    TasksCancel,
    TasksUpdate,
    NotificationsInitialized,
    NotificationsCancelled,
}

impl Method {
    /// Every method, for tables and tests.
    pub const ALL: [Method; 21] = [
        Method::Initialize,
        Method::Ping,
        Method::ServerDiscover,
        Method::ToolsList,
        Method::ToolsCall,
        Method::LoggingSetLevel,
        Method::ResourcesList,
        Method::ResourcesTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::PromptsList,
        Method::PromptsGet,
        Method::CompletionComplete,
        Method::TasksGet,
        Method::TasksResult,
        Method::TasksList,
        Method::TasksCancel,
        Method::TasksUpdate,
        Method::NotificationsInitialized,
        Method::NotificationsCancelled,
    ];

    /// The method name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ServerDiscover => "server/discover",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::LoggingSetLevel => "logging/setLevel",
            Method::ResourcesList => "resources/list",
            Method::ResourcesTemplatesList => "resources/templates/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::CompletionComplete => "completion/complete",
            Method::TasksGet => "tasks/get",
            Method::TasksResult => "tasks/result",
            Method::TasksList => "tasks/list",
            Method::TasksCancel => "tasks/cancel",
            Method::TasksUpdate => "tasks/update",
            Method::NotificationsInitialized => "notifications/initialized",
            Method::NotificationsCancelled => "notifications/cancelled",
        }
    }

    /// The method a wire name names; `None` for a method this server does not know.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Whether a 2026-07-28 client may call it (before filtering by registered features).
    pub fn is_modern(self) -> bool {
        matches!(
            self,
            Method::ServerDiscover
                | Method::ToolsList
                | Method::ToolsCall
                | Method::ResourcesList
                | Method::ResourcesTemplatesList
                | Method::ResourcesRead
                | Method::PromptsList
                | Method::PromptsGet
                | Method::CompletionComplete
                | Method::TasksGet
                | Method::TasksCancel
                | Method::TasksUpdate
        )
    }

    /// Whether a 2026-07-28 result may be cached by the client (`ttlMs`, `cacheScope`).
    pub fn is_cacheable(self) -> bool {
        matches!(
            self,
            Method::ToolsList
                | Method::PromptsList
                | Method::ResourcesList
                | Method::ResourcesTemplatesList
                | Method::ResourcesRead
                | Method::ServerDiscover
        )
    }

    /// The params field the 2026-07-28 `Mcp-Name` header must repeat, if any.
    pub fn name_field(self) -> Option<&'static str> {
        match self {
            Method::ToolsCall | Method::PromptsGet => Some("name"),
            Method::ResourcesRead => Some("uri"),
            // The tasks extension routes task requests by task id.
            Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => Some("taskId"),
            _ => None,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
        for unknown in [
            "",
            "tools/List",
            "tools",
            "nope/nope",
            "sampling/createMessage",
            "tasks/Get",
        ] {
            assert_eq!(Method::parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn modern_cacheable_and_named_methods() {
        // (method, modern, cacheable, name field)
        let table = [
            (Method::Initialize, false, false, None),
            (Method::Ping, false, false, None),
            (Method::ServerDiscover, true, true, None),
            (Method::ToolsList, true, true, None),
            (Method::ToolsCall, true, false, Some("name")),
            (Method::LoggingSetLevel, false, false, None),
            (Method::ResourcesList, true, true, None),
            (Method::ResourcesTemplatesList, true, true, None),
            (Method::ResourcesRead, true, true, Some("uri")),
            (Method::ResourcesSubscribe, false, false, None),
            (Method::ResourcesUnsubscribe, false, false, None),
            (Method::PromptsList, true, true, None),
            (Method::PromptsGet, true, false, Some("name")),
            (Method::CompletionComplete, true, false, None),
            (Method::TasksGet, true, false, Some("taskId")),
            (Method::TasksResult, false, false, None),
            (Method::TasksList, false, false, None),
            (Method::TasksCancel, true, false, Some("taskId")),
            (Method::TasksUpdate, true, false, Some("taskId")),
            (Method::NotificationsInitialized, false, false, None),
            (Method::NotificationsCancelled, false, false, None),
        ];
        assert_eq!(table.len(), Method::ALL.len());
        for (m, modern, cacheable, name) in table {
            assert_eq!(m.is_modern(), modern, "{m}");
            assert_eq!(m.is_cacheable(), cacheable, "{m}");
            assert_eq!(m.name_field(), name, "{m}");
        }
    }
}
