//! The fixture tools the conformance scenarios call (`test_simple_text`, `test_sampling`,
//! `test_input_required_result_*`, …), one [`Behaviour`] each.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kasm_mcp::mcp::{
    CallContext, ClientRequestError, Content, LogLevel, Tool, ToolAnnotations, ToolOutput, ToolSpec,
};
use kasm_mcp::policy::Role;
use serde_json::{Map, Value, json};

use crate::media::{png, wav_base64};

/// Which fixture a [`Fixture`] tool runs.
#[derive(Clone, Copy)]
enum Behaviour {
    SimpleText,
    Image,
    Audio,
    EmbeddedResource,
    MixedContent,
    Logging,
    Error,
    Progress,
    Sampling,
    Elicitation,
    ElicitationDefaults,
    ElicitationEnums,
    JsonSchema2020,
    Reconnection,
    /// 2026-07-28 multi round-trip requests (input_required results).
    InputElicitation,
    InputSampling,
    InputListRoots,
    InputRequestState,
    InputMultiple,
    InputMultiRound,
    InputCapabilities,
    /// Needs the client's sampling capability (refused with -32021 when undeclared).
    MissingCapability,
}

struct Fixture {
    spec: ToolSpec,
    behaviour: Behaviour,
    requires: &'static [&'static str],
}

fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn string_argument(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { name: { "type": "string", "description": description } },
        "required": [name],
    })
}

fn fixture(name: &str, description: &str, schema: Value, behaviour: Behaviour) -> Arc<dyn Tool> {
    fixture_requiring(name, description, schema, behaviour, &[])
}

fn fixture_requiring(
    name: &str,
    description: &str,
    schema: Value,
    behaviour: Behaviour,
    requires: &'static [&'static str],
) -> Arc<dyn Tool> {
    Arc::new(Fixture {
        spec: ToolSpec {
            name: name.into(),
            title: name.into(),
            description: description.into(),
            input_schema: schema,
            output_schema: None,
            annotations: ToolAnnotations {
                read_only_hint: true,
                destructive_hint: false,
                idempotent_hint: true,
                open_world_hint: false,
            },
            min_role: Role::Viewer,
            task_support: Default::default(),
        },
        behaviour,
        requires,
    })
}

pub fn tools() -> Vec<Arc<dyn Tool>> {
    use Behaviour::*;
    vec![
        fixture(
            "test_simple_text",
            "Returns simple text",
            no_arguments(),
            SimpleText,
        ),
        fixture(
            "test_image_content",
            "Returns an image",
            no_arguments(),
            Image,
        ),
        fixture("test_audio_content", "Returns audio", no_arguments(), Audio),
        fixture(
            "test_embedded_resource",
            "Returns an embedded resource",
            no_arguments(),
            EmbeddedResource,
        ),
        fixture(
            "test_multiple_content_types",
            "Returns text, an image and a resource",
            no_arguments(),
            MixedContent,
        ),
        fixture(
            "test_tool_with_logging",
            "Sends three log messages while running",
            no_arguments(),
            Logging,
        ),
        fixture(
            "test_error_handling",
            "Always fails with isError",
            no_arguments(),
            Error,
        ),
        fixture(
            "test_tool_with_progress",
            "Reports progress 0, 50, 100 of 100",
            no_arguments(),
            Progress,
        ),
        fixture(
            "test_sampling",
            "Asks the client's LLM (sampling/createMessage)",
            string_argument("prompt", "The prompt to send to the LLM"),
            Sampling,
        ),
        fixture(
            "test_elicitation",
            "Asks the user for input (elicitation/create)",
            string_argument("message", "The message to show the user"),
            Elicitation,
        ),
        fixture(
            "test_elicitation_sep1034_defaults",
            "Elicitation with default values for every primitive type",
            no_arguments(),
            ElicitationDefaults,
        ),
        fixture(
            "test_elicitation_sep1330_enums",
            "Elicitation with all five enum schema variants",
            no_arguments(),
            ElicitationEnums,
        ),
        fixture(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "$anchor": "addressDef",
                        "type": "object",
                        "properties": {
                            "street": { "type": "string" },
                            "city": { "type": "string" }
                        }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                    "phone": { "type": "string" },
                    "email": { "type": "string" }
                },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": {
                    "properties": { "contactMethod": { "const": "phone" } },
                    "required": ["contactMethod"]
                },
                "then": { "required": ["phone"] },
                "else": { "required": ["email"] },
                "additionalProperties": false
            }),
            JsonSchema2020,
        ),
        fixture(
            "test_reconnection",
            "Completes after a short pause (SSE polling scenario)",
            no_arguments(),
            Reconnection,
        ),
        fixture(
            "test_custom_header_tool",
            "Echoes a region that clients mirror into the Mcp-Param-Region header",
            json!({
                "type": "object",
                "properties": {
                    "region": { "type": "string", "x-mcp-header": "Region" }
                },
                "required": ["region"]
            }),
            SimpleText,
        ),
        fixture(
            "test_logging_tool",
            "Sends log messages (only when the request asks for a log level)",
            no_arguments(),
            Logging,
        ),
        fixture(
            "test_streaming_elicitation",
            "Asks the user a question (input_required in 2026-07-28)",
            no_arguments(),
            InputElicitation,
        ),
        fixture_requiring(
            "test_missing_capability",
            "Needs the client's sampling capability",
            no_arguments(),
            MissingCapability,
            &["sampling"],
        ),
        fixture(
            "test_input_required_result_elicitation",
            "Asks for the user's name, then greets them",
            no_arguments(),
            InputElicitation,
        ),
        fixture(
            "test_input_required_result_sampling",
            "Asks the client's LLM a question",
            no_arguments(),
            InputSampling,
        ),
        fixture(
            "test_input_required_result_list_roots",
            "Asks the client for its roots",
            no_arguments(),
            InputListRoots,
        ),
        fixture(
            "test_input_required_result_request_state",
            "Asks for confirmation, carrying state across the retry",
            no_arguments(),
            InputRequestState,
        ),
        fixture(
            "test_input_required_result_tampered_state",
            "Asks for confirmation with integrity-protected state",
            no_arguments(),
            InputRequestState,
        ),
        fixture(
            "test_input_required_result_multiple_inputs",
            "Asks for a name, an LLM greeting and the roots at once",
            no_arguments(),
            InputMultiple,
        ),
        fixture(
            "test_input_required_result_multi_round",
            "Asks two questions in two rounds",
            no_arguments(),
            InputMultiRound,
        ),
        fixture(
            "test_input_required_result_capabilities",
            "Asks only for what the client declared it can answer",
            no_arguments(),
            InputCapabilities,
        ),
    ]
}

/// One answer from the client, or the early return the tool should make without it.
async fn ask(
    ctx: &CallContext,
    key: &str,
    method: &str,
    params: Value,
) -> Result<Value, ToolOutput> {
    match ctx.notifier.request_client_as(key, method, params).await {
        Ok(answer) => Ok(answer),
        Err(ClientRequestError::InputRequired) => Err(ToolOutput::text("waiting for client input")),
        Err(e) => Err(ToolOutput::error(format!("{method} failed: {e}"))),
    }
}

pub fn name_question(message: &str, field: &str) -> Value {
    json!({
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": { field: { "type": "string" } },
            "required": [field]
        }
    })
}

fn capital_question() -> Value {
    json!({
        "messages": [{ "role": "user", "content": { "type": "text", "text": "What is the capital of France?" } }],
        "maxTokens": 100
    })
}

fn pause() -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(50))
}

async fn elicit(ctx: &CallContext, message: &str, schema: Value, label: &str) -> ToolOutput {
    let params = json!({ "message": message, "requestedSchema": schema });
    match ctx
        .notifier
        .request_client("elicitation/create", params)
        .await
    {
        Ok(answer) => {
            let action = answer["action"].as_str().unwrap_or("unknown");
            let content = answer.get("content").cloned().unwrap_or(json!({}));
            ToolOutput::text(format!("{label}: action={action}, content={content}"))
        }
        Err(e) => ToolOutput::error(format!("elicitation failed: {e}")),
    }
}

#[async_trait]
impl Tool for Fixture {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn required_client_capabilities(&self) -> &'static [&'static str] {
        self.requires
    }

    async fn call(&self, ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        match self.interactive(ctx).await {
            Some(Ok(output)) | Some(Err(output)) => return output,
            None => {}
        }
        let text_arg = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_string);
        match self.behaviour {
            Behaviour::SimpleText => {
                ToolOutput::text("This is a simple text response for testing.")
            }
            Behaviour::Image => ToolOutput {
                content: vec![png()],
                structured: None,
                is_error: false,
            },
            Behaviour::Audio => ToolOutput {
                content: vec![Content::Audio {
                    data: wav_base64(),
                    mime_type: "audio/wav".into(),
                }],
                structured: None,
                is_error: false,
            },
            Behaviour::EmbeddedResource => ToolOutput {
                content: vec![Content::Resource {
                    resource: json!({
                        "uri": "test://embedded-resource",
                        "mimeType": "text/plain",
                        "text": "This is an embedded resource content.",
                    }),
                }],
                structured: None,
                is_error: false,
            },
            Behaviour::MixedContent => ToolOutput {
                content: vec![
                    Content::Text {
                        text: "Multiple content types test:".into(),
                    },
                    png(),
                    Content::Resource {
                        resource: json!({
                            "uri": "test://mixed-content-resource",
                            "mimeType": "application/json",
                            "text": json!({"test": "data", "value": 123}).to_string(),
                        }),
                    },
                ],
                structured: None,
                is_error: false,
            },
            Behaviour::Logging => {
                let log = |text: &str| ctx.notifier.log(LogLevel::Info, "conformance", json!(text));
                log("Tool execution started");
                pause().await;
                log("Tool processing data");
                pause().await;
                log("Tool execution completed");
                ToolOutput::text("Tool with logging executed successfully")
            }
            Behaviour::Error => {
                ToolOutput::error("This tool intentionally returns an error for testing")
            }
            Behaviour::Progress => {
                ctx.notifier.progress(0.0, Some(100.0), None);
                pause().await;
                ctx.notifier.progress(50.0, Some(100.0), None);
                pause().await;
                ctx.notifier.progress(100.0, Some(100.0), None);
                ToolOutput::text("Tool with progress executed successfully")
            }
            Behaviour::Sampling => {
                let Some(prompt) = text_arg("prompt") else {
                    return ToolOutput::error("argument \"prompt\" (string) is required");
                };
                let params = json!({
                    "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
                    "maxTokens": 100,
                });
                match ctx
                    .notifier
                    .request_client("sampling/createMessage", params)
                    .await
                {
                    Ok(answer) => {
                        let text = answer["content"]["text"].as_str().unwrap_or("(no text)");
                        ToolOutput::text(format!("LLM response: {text}"))
                    }
                    Err(e) => ToolOutput::error(format!("sampling failed: {e}")),
                }
            }
            Behaviour::Elicitation => {
                let Some(message) = text_arg("message") else {
                    return ToolOutput::error("argument \"message\" (string) is required");
                };
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "username": { "type": "string", "description": "User's response" },
                        "email": { "type": "string", "description": "User's email address" }
                    },
                    "required": ["username", "email"]
                });
                elicit(ctx, &message, schema, "User response").await
            }
            Behaviour::ElicitationDefaults => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "description": "User name", "default": "John Doe" },
                        "age": { "type": "integer", "description": "User age", "default": 30 },
                        "score": { "type": "number", "description": "User score", "default": 95.5 },
                        "status": {
                            "type": "string",
                            "description": "User status",
                            "enum": ["active", "inactive", "pending"],
                            "default": "active"
                        },
                        "verified": { "type": "boolean", "description": "Verification status", "default": true }
                    }
                });
                elicit(
                    ctx,
                    "Please review your details",
                    schema,
                    "Elicitation completed",
                )
                .await
            }
            Behaviour::ElicitationEnums => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "untitledSingle": {
                            "type": "string",
                            "enum": ["option1", "option2", "option3"]
                        },
                        "titledSingle": {
                            "type": "string",
                            "oneOf": [
                                { "const": "value1", "title": "First Option" },
                                { "const": "value2", "title": "Second Option" },
                                { "const": "value3", "title": "Third Option" }
                            ]
                        },
                        "legacyEnum": {
                            "type": "string",
                            "enum": ["opt1", "opt2", "opt3"],
                            "enumNames": ["Option One", "Option Two", "Option Three"]
                        },
                        "untitledMulti": {
                            "type": "array",
                            "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                        },
                        "titledMulti": {
                            "type": "array",
                            "items": {
                                "anyOf": [
                                    { "const": "value1", "title": "First Choice" },
                                    { "const": "value2", "title": "Second Choice" },
                                    { "const": "value3", "title": "Third Choice" }
                                ]
                            }
                        }
                    }
                });
                elicit(ctx, "Pick some options", schema, "Elicitation completed").await
            }
            Behaviour::JsonSchema2020 => {
                ToolOutput::text(format!("received {}", Value::Object(args.clone())))
            }
            Behaviour::Reconnection => {
                pause().await;
                ToolOutput::text("Reconnection test completed")
            }
            _ => ToolOutput::error("not an interactive fixture"),
        }
    }
}

impl Fixture {
    /// The fixtures that ask the client for input (None for the others).
    async fn interactive(&self, ctx: &CallContext) -> Option<Result<ToolOutput, ToolOutput>> {
        let elicit = "elicitation/create";
        let sample = "sampling/createMessage";
        Some(match self.behaviour {
            Behaviour::InputElicitation => ask(
                ctx,
                "user_name",
                elicit,
                name_question("What is your name?", "name"),
            )
            .await
            .map(|a| {
                let name = a["content"]["name"].as_str().unwrap_or("stranger");
                ToolOutput::text(format!("Hello, {name}!"))
            }),
            Behaviour::InputSampling => ask(ctx, "capital_question", sample, capital_question())
                .await
                .map(|a| {
                    let text = a["content"]["text"].as_str().unwrap_or("(no text)");
                    ToolOutput::text(format!("LLM response: {text}"))
                }),
            Behaviour::InputListRoots => ask(ctx, "client_roots", "roots/list", json!({}))
                .await
                .map(|a| {
                    let roots: Vec<&str> = a["roots"]
                        .as_array()
                        .map(|r| r.iter().filter_map(|r| r["uri"].as_str()).collect())
                        .unwrap_or_default();
                    ToolOutput::text(format!("Client roots: {}", roots.join(", ")))
                }),
            Behaviour::InputRequestState => {
                ctx.notifier.set_request_state(json!({ "step": "confirm" }));
                let question = json!({
                    "message": "Please confirm",
                    "requestedSchema": {
                        "type": "object",
                        "properties": { "ok": { "type": "boolean" } },
                        "required": ["ok"]
                    }
                });
                match ask(ctx, "confirm", elicit, question).await {
                    Err(early) => Err(early),
                    Ok(_) if ctx.notifier.request_state() == Some(json!({ "step": "confirm" })) => {
                        Ok(ToolOutput::text("Confirmed: state-ok"))
                    }
                    Ok(_) => Ok(ToolOutput::error("the requestState did not come back")),
                }
            }
            Behaviour::InputMultiple => {
                let name = ask(
                    ctx,
                    "user_name",
                    elicit,
                    name_question("What is your name?", "name"),
                )
                .await;
                let greeting = json!({
                    "messages": [{ "role": "user", "content": { "type": "text", "text": "Generate a greeting" } }],
                    "maxTokens": 50
                });
                let greeting = ask(ctx, "greeting", sample, greeting).await;
                let roots = ask(ctx, "client_roots", "roots/list", json!({})).await;
                match (name, greeting, roots) {
                    (Ok(n), Ok(g), Ok(r)) => Ok(ToolOutput::text(format!(
                        "name={}, greeting={}, roots={}",
                        n["content"]["name"], g["content"]["text"], r["roots"]
                    ))),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
                }
            }
            Behaviour::InputMultiRound => {
                match ask(
                    ctx,
                    "step1",
                    elicit,
                    name_question("Step 1: What is your name?", "name"),
                )
                .await
                {
                    Err(early) => Err(early),
                    Ok(step1) => ask(
                        ctx,
                        "step2",
                        elicit,
                        name_question("Step 2: What is your favorite color?", "color"),
                    )
                    .await
                    .map(|step2| {
                        ToolOutput::text(format!(
                            "{} likes {}",
                            step1["content"]["name"], step2["content"]["color"]
                        ))
                    }),
                }
            }
            Behaviour::InputCapabilities => {
                let asked_user = ask(
                    ctx,
                    "ask_user",
                    elicit,
                    name_question("What is your name?", "name"),
                )
                .await;
                let asked_llm = ask(ctx, "ask_llm", sample, capital_question()).await;
                let answered: Vec<String> = [("user", asked_user), ("llm", asked_llm)]
                    .into_iter()
                    .filter_map(|(who, a)| a.ok().map(|a| format!("{who}: {a}")))
                    .collect();
                Ok(ToolOutput::text(format!(
                    "answers: {}",
                    answered.join("; ")
                )))
            }
            Behaviour::MissingCapability => ask(ctx, "llm", sample, capital_question())
                .await
                .map(|a| ToolOutput::text(format!("LLM response: {}", a["content"]["text"]))),
            _ => return None,
        })
    }
}
