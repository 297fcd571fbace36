//! Argument completion (`completion/complete`): the provider trait and request/result shapes.
//! Offered (and advertised) only when a provider is registered.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::mcp::jsonrpc::{RpcError, params_object, required_str};
use crate::policy::Principal;

/// The spec caps `values` at 100 entries.
pub const MAX_COMPLETION_VALUES: usize = 100;

/// What is being completed.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionRef {
    Prompt { name: String },
    Resource { uri: String },
}

/// A parsed `completion/complete` request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub reference: CompletionRef,
    pub argument_name: String,
    pub argument_value: String,
    /// `context.arguments`: values of other, already-resolved arguments.
    pub context_arguments: Map<String, Value>,
}

/// Suggestions for one argument.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub values: Vec<String>,
    pub total: Option<u64>,
    pub has_more: bool,
}

impl Completion {
    /// The `CompleteResult`, truncated to 100 values (with `hasMore` set when cut).
    pub fn to_json(&self) -> Value {
        let cut = self.values.len() > MAX_COMPLETION_VALUES;
        let values: Vec<&String> = self.values.iter().take(MAX_COMPLETION_VALUES).collect();
        let mut completion = json!({ "values": values, "hasMore": self.has_more || cut });
        if let Some(obj) = completion.as_object_mut() {
            let total = self.total.or(cut.then_some(self.values.len() as u64));
            if let Some(total) = total {
                obj.insert("total".into(), json!(total));
            }
        }
        json!({ "completion": completion })
    }
}

impl CompletionRequest {
    /// Parse `params`; malformed → -32602.
    pub fn parse(params: Option<&Value>) -> Result<CompletionRequest, RpcError> {
        let params = params_object(params)?;
        let reference = params
            .get("ref")
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::invalid_params("params.ref must be an object"))?;
        let reference = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => CompletionRef::Prompt {
                name: required_str(reference, "name")?.to_string(),
            },
            Some("ref/resource") => CompletionRef::Resource {
                uri: required_str(reference, "uri")?.to_string(),
            },
            _ => {
                return Err(RpcError::invalid_params(
                    "params.ref.type must be \"ref/prompt\" or \"ref/resource\"",
                ));
            }
        };
        let argument = params
            .get("argument")
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::invalid_params("params.argument must be an object"))?;
        let context_arguments = params
            .get("context")
            .and_then(|c| c.get("arguments"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(CompletionRequest {
            reference,
            argument_name: required_str(argument, "name")?.to_string(),
            argument_value: required_str(argument, "value")?.to_string(),
            context_arguments,
        })
    }
}

/// Supplies completions.
#[async_trait]
pub trait CompletionProvider: Send + Sync {
    async fn complete(&self, principal: &Principal, request: CompletionRequest) -> Completion;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prompt_and_resource_refs() {
        let p = json!({"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"x"},
                       "context":{"arguments":{"b":"1"}}});
        let r = CompletionRequest::parse(Some(&p)).unwrap();
        assert_eq!(r.reference, CompletionRef::Prompt { name: "p".into() });
        assert_eq!(r.context_arguments.get("b"), Some(&json!("1")));
        let p = json!({"ref":{"type":"ref/resource","uri":"u"},"argument":{"name":"a","value":""}});
        assert!(CompletionRequest::parse(Some(&p)).is_ok());
    }

    #[test]
    fn malformed_requests_are_invalid_params() {
        let bad = [
            json!({}),
            json!({"ref":{"type":"ref/other"},"argument":{"name":"a","value":"x"}}),
            json!({"ref":{"type":"ref/prompt"},"argument":{"name":"a","value":"x"}}),
            json!({"ref":{"type":"ref/prompt","name":"p"}}),
            json!({"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a"}}),
            json!([1]),
        ];
        for p in bad {
            assert_eq!(
                CompletionRequest::parse(Some(&p)).unwrap_err().code,
                -32602,
                "{p}"
            );
        }
    }

    #[test]
    fn caps_values_at_one_hundred() {
        let c = Completion {
            values: (0..150).map(|i| i.to_string()).collect(),
            total: None,
            has_more: false,
        };
        let v = c.to_json();
        assert_eq!(v["completion"]["values"].as_array().unwrap().len(), 100);
        assert_eq!(v["completion"]["hasMore"], true);
        assert_eq!(v["completion"]["total"], 150);
    }
}
