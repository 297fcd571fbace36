//! Prompts: the provider trait (`prompts/list`, `prompts/get`) and their JSON shapes.
//! Offered (and advertised) only when a provider is registered.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::mcp::tool::{Content, Notifier};
use crate::policy::Principal;

/// One declared argument of a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptArgument {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
}

/// A prompt as listed by `prompts/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptInfo {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgument>,
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptRole {
    User,
    Assistant,
}

/// One message of `prompts/get`.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptMessage {
    pub role: PromptRole,
    pub content: Content,
}

/// The `GetPromptResult`.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptResult {
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
}

/// Why `prompts/get` failed (all become -32602 except `Failed`, which is -32603).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromptError {
    #[error("unknown prompt {0:?}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArguments(String),
    #[error("{0}")]
    Failed(String),
}

impl PromptInfo {
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "name": self.name });
        if let Some(obj) = v.as_object_mut() {
            if let Some(t) = &self.title {
                obj.insert("title".into(), json!(t));
            }
            if let Some(d) = &self.description {
                obj.insert("description".into(), json!(d));
            }
            if !self.arguments.is_empty() {
                let args: Vec<Value> = self
                    .arguments
                    .iter()
                    .map(|a| {
                        let mut arg = json!({ "name": a.name, "required": a.required });
                        if let (Some(d), Some(o)) = (&a.description, arg.as_object_mut()) {
                            o.insert("description".into(), json!(d));
                        }
                        arg
                    })
                    .collect();
                obj.insert("arguments".into(), Value::Array(args));
            }
        }
        v
    }
}

impl PromptResult {
    pub fn to_json(&self) -> Value {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    PromptRole::User => "user",
                    PromptRole::Assistant => "assistant",
                };
                json!({ "role": role, "content": m.content })
            })
            .collect();
        let mut v = json!({ "messages": messages });
        if let (Some(d), Some(obj)) = (&self.description, v.as_object_mut()) {
            obj.insert("description".into(), json!(d));
        }
        v
    }
}

/// Supplies prompts. Listing order does not matter: the router sorts by name.
#[async_trait]
pub trait PromptProvider: Send + Sync {
    async fn list(&self, principal: &Principal) -> Vec<PromptInfo>;

    /// `arguments` are the string-valued `params.arguments` (absent = empty).
    async fn get(
        &self,
        principal: &Principal,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<PromptResult, PromptError>;

    /// `get` for prompts that ask the client for input through `notifier`
    /// (`request_client_as`; in 2026-07-28 a missing answer makes the router reply
    /// `input_required`). Defaults to [`PromptProvider::get`].
    async fn get_interactive(
        &self,
        principal: &Principal,
        name: &str,
        arguments: Map<String, Value>,
        _notifier: &Notifier,
    ) -> Result<PromptResult, PromptError> {
        self.get(principal, name, arguments).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_schema() {
        let p = PromptInfo {
            name: "p".into(),
            title: None,
            description: Some("d".into()),
            arguments: vec![PromptArgument {
                name: "a".into(),
                description: None,
                required: true,
            }],
        };
        assert_eq!(
            p.to_json(),
            json!({"name":"p","description":"d","arguments":[{"name":"a","required":true}]})
        );
        let r = PromptResult {
            description: None,
            messages: vec![PromptMessage {
                role: PromptRole::User,
                content: Content::Text { text: "hi".into() },
            }],
        };
        assert_eq!(
            r.to_json(),
            json!({"messages":[{"role":"user","content":{"type":"text","text":"hi"}}]})
        );
    }
}
