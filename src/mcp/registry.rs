//! The tool registry: tools by name, in a deterministic order, filtered by the caller's role.
//! A tool whose `min_role` the principal lacks is hidden from `tools/list` and refused on call.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::mcp::jsonrpc::RpcError;
use crate::mcp::pagination::{Page, paginate};
use crate::mcp::tool::Tool;
use crate::policy::{Principal, may_use_tool};

/// What a name resolves to for one principal.
pub enum Lookup<'a> {
    Found(&'a Arc<dyn Tool>),
    /// No tool by that name is visible to this principal.
    Unknown,
    /// The tool exists but needs a higher role.
    Forbidden,
}

/// Tools sorted by name (names are unique; a later duplicate replaces an earlier one).
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl ToolRegistry {
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        let tools = tools
            .into_iter()
            .map(|tool| (tool.spec().name.clone(), tool))
            .collect();
        ToolRegistry { tools }
    }

    /// All tools, sorted by name, regardless of role.
    pub fn all(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.values().cloned().collect()
    }

    pub fn visible_to(&self, principal: &Principal) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools
            .values()
            .filter(move |tool| may_use_tool(principal.role, tool.spec().min_role))
    }

    pub fn lookup(&self, principal: &Principal, name: &str) -> Lookup<'_> {
        match self.tools.get(name) {
            Some(tool) if may_use_tool(principal.role, tool.spec().min_role) => Lookup::Found(tool),
            Some(_) => Lookup::Forbidden,
            None => Lookup::Unknown,
        }
    }

    /// One page of `tools/list` (the `Tool` JSON objects).
    pub fn list_page(
        &self,
        principal: &Principal,
        after: Option<&str>,
        page_size: usize,
    ) -> Page<Value> {
        let visible: Vec<&Arc<dyn Tool>> = self.visible_to(principal).collect();
        let page = paginate(visible, |t| t.spec().name.clone(), after, page_size);
        Page {
            items: page.items.iter().map(|t| t.spec().to_json()).collect(),
            next_cursor: page.next_cursor,
        }
    }

    /// The -32602 error for a tool the caller cannot use, naming what it can use.
    pub fn unavailable_error(&self, principal: &Principal, name: &str) -> RpcError {
        let visible: Vec<&str> = self
            .visible_to(principal)
            .map(|t| t.spec().name.as_str())
            .collect();
        const SHOWN: usize = 20;
        let listing = match visible.len() {
            0 => "none".to_string(),
            n if n > SHOWN => format!(
                "{}, … and {} more (see tools/list)",
                visible
                    .iter()
                    .take(SHOWN)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                n - SHOWN
            ),
            _ => visible.join(", "),
        };
        match self.lookup(principal, name) {
            Lookup::Forbidden => RpcError::invalid_params(format!(
                "tool {name:?} is not available to principal {:?} (role {}); tools you may call: {listing}",
                principal.name, principal.role
            )),
            _ => RpcError::invalid_params(format!(
                "unknown tool {name:?}; tools you may call: {listing}"
            )),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mcp::tool::{CallContext, ToolAnnotations, ToolOutput, ToolSpec};
    use crate::policy::Role;
    use async_trait::async_trait;
    use serde_json::{Map, json};

    pub(crate) struct NamedTool(pub ToolSpec);

    #[async_trait]
    impl Tool for NamedTool {
        fn spec(&self) -> &ToolSpec {
            &self.0
        }
        async fn call(&self, _ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
            ToolOutput::text(self.0.name.clone())
        }
    }

    pub(crate) fn spec(name: &str, min_role: Role) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            title: name.into(),
            description: format!("the {name} tool"),
            input_schema: json!({"type":"object"}),
            output_schema: None,
            annotations: ToolAnnotations {
                read_only_hint: true,
                destructive_hint: false,
                idempotent_hint: true,
                open_world_hint: false,
            },
            min_role,
            task_support: Default::default(),
        }
    }

    fn principal(role: Role) -> Principal {
        Principal {
            name: format!("{role}-user"),
            role,
            kasm_user_id: None,
            oauth: None,
        }
    }

    fn registry() -> ToolRegistry {
        ToolRegistry::new(vec![
            Arc::new(NamedTool(spec("zeta", Role::Viewer))),
            Arc::new(NamedTool(spec("alpha", Role::Operator))),
            Arc::new(NamedTool(spec("admin_only", Role::Admin))),
            Arc::new(NamedTool(spec("beta", Role::Viewer))),
        ])
    }

    fn listed(r: &ToolRegistry, role: Role) -> Vec<String> {
        r.list_page(&principal(role), None, 100)
            .items
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn listing_is_sorted_and_filtered_by_role() {
        let r = registry();
        assert_eq!(listed(&r, Role::Viewer), vec!["beta", "zeta"]);
        assert_eq!(listed(&r, Role::Operator), vec!["alpha", "beta", "zeta"]);
        assert_eq!(
            listed(&r, Role::Admin),
            vec!["admin_only", "alpha", "beta", "zeta"]
        );
    }

    #[test]
    fn lookup_distinguishes_unknown_and_forbidden() {
        let r = registry();
        let viewer = principal(Role::Viewer);
        assert!(matches!(r.lookup(&viewer, "beta"), Lookup::Found(_)));
        assert!(matches!(r.lookup(&viewer, "alpha"), Lookup::Forbidden));
        assert!(matches!(r.lookup(&viewer, "nope"), Lookup::Unknown));
        let msg = r.unavailable_error(&viewer, "alpha").message;
        assert!(
            msg.contains("not available") && msg.contains("beta, zeta"),
            "{msg}"
        );
        let msg = r.unavailable_error(&viewer, "nope").message;
        assert!(
            msg.contains("unknown tool") && !msg.contains("admin_only"),
            "{msg}"
        );
    }
}
