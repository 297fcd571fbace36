//! The fixture prompts (`test_simple_prompt`, `test_prompt_with_arguments`, …) and the
//! completions for their arguments.

use async_trait::async_trait;
use kasm_mcp::mcp::{
    Completion, CompletionProvider, CompletionRef, CompletionRequest, Content, Notifier,
    PromptArgument, PromptError, PromptInfo, PromptMessage, PromptProvider, PromptResult,
    PromptRole,
};
use kasm_mcp::policy::Principal;
use serde_json::{Map, Value, json};

use crate::media::png;
use crate::tools::name_question;

pub struct FixturePrompts;

fn argument(name: &str, description: &str) -> PromptArgument {
    PromptArgument {
        name: name.into(),
        description: Some(description.into()),
        required: true,
    }
}

fn user(content: Content) -> PromptMessage {
    PromptMessage {
        role: PromptRole::User,
        content,
    }
}

fn text(text: impl Into<String>) -> Content {
    Content::Text { text: text.into() }
}

#[async_trait]
impl PromptProvider for FixturePrompts {
    async fn list(&self, _principal: &Principal) -> Vec<PromptInfo> {
        let prompt = |name: &str, description: &str, arguments| PromptInfo {
            name: name.into(),
            title: None,
            description: Some(description.into()),
            arguments,
        };
        vec![
            prompt("test_simple_prompt", "A simple prompt", vec![]),
            prompt(
                "test_prompt_with_arguments",
                "A prompt with two arguments",
                vec![
                    argument("arg1", "First test argument"),
                    argument("arg2", "Second test argument"),
                ],
            ),
            prompt(
                "test_prompt_with_embedded_resource",
                "A prompt that embeds a resource",
                vec![argument("resourceUri", "URI of the resource to embed")],
            ),
            prompt("test_prompt_with_image", "A prompt with an image", vec![]),
            prompt(
                "test_input_required_result_prompt",
                "A prompt that asks the user for context first",
                vec![],
            ),
        ]
    }

    async fn get(
        &self,
        _principal: &Principal,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<PromptResult, PromptError> {
        let arg = |key: &str| {
            arguments
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    PromptError::InvalidArguments(format!("argument {key:?} (string) is required"))
                })
        };
        let messages = match name {
            "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
            "test_prompt_with_arguments" => {
                let (arg1, arg2) = (arg("arg1")?, arg("arg2")?);
                vec![user(text(format!(
                    "Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
                )))]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = arg("resourceUri")?;
                vec![
                    user(Content::Resource {
                        resource: json!({
                            "uri": uri,
                            "mimeType": "text/plain",
                            "text": "Embedded resource content for testing.",
                        }),
                    }),
                    user(text("Please process the embedded resource above.")),
                ]
            }
            "test_prompt_with_image" => {
                vec![user(png()), user(text("Please analyze the image above."))]
            }
            other => return Err(PromptError::NotFound(other.into())),
        };
        Ok(PromptResult {
            description: None,
            messages,
        })
    }

    async fn get_interactive(
        &self,
        principal: &Principal,
        name: &str,
        arguments: Map<String, Value>,
        notifier: &Notifier,
    ) -> Result<PromptResult, PromptError> {
        if name != "test_input_required_result_prompt" {
            return self.get(principal, name, arguments).await;
        }
        let question = name_question("What context should the prompt use?", "context");
        match notifier
            .request_client_as("user_context", "elicitation/create", question)
            .await
        {
            Ok(answer) => Ok(PromptResult {
                description: None,
                messages: vec![user(text(format!(
                    "Use this context: {}",
                    answer["content"]["context"]
                )))],
            }),
            Err(e) => Err(PromptError::Failed(format!(
                "no context from the user: {e}"
            ))),
        }
    }
}

pub struct FixtureCompletions;

#[async_trait]
impl CompletionProvider for FixtureCompletions {
    async fn complete(&self, _principal: &Principal, request: CompletionRequest) -> Completion {
        let candidates: &[&str] = match (&request.reference, request.argument_name.as_str()) {
            (CompletionRef::Prompt { name }, "arg1" | "arg2")
                if name == "test_prompt_with_arguments" =>
            {
                &["paris", "park", "party"]
            }
            (CompletionRef::Resource { uri }, "id") if uri == "test://template/{id}/data" => {
                &["1", "123", "42"]
            }
            _ => &[],
        };
        let values: Vec<String> = candidates
            .iter()
            .filter(|c| c.starts_with(&request.argument_value))
            .map(|c| c.to_string())
            .collect();
        Completion {
            total: Some(values.len() as u64),
            values,
            has_more: false,
        }
    }
}
