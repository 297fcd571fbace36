//! The command policy at the door of `execute_kasm_command`: judge the command text
//! (`policy::commands`), and for `confirm` ask a human through MCP elicitation — a
//! server→client `elicitation/create` request for 2025-06-18…2025-11-25 clients that declared
//! the capability, the `input_required` round trip for 2026-07-28 — before anything is sent
//! to Kasm. Also the environment-name policy (`policy::env`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ToolDeps;
use super::access::SessionRef;
use super::support::ToolError;
use crate::mcp::{CallContext, ClientRequestError};
use crate::policy::commands::{Decision, Finding, Scope, UNRESOLVED_RULE};

/// The MRTR key of the approval request (stable, so the retry finds its answer).
const APPROVAL_KEY: &str = "approve-command";

/// Longest command text quoted back in messages.
const SHOWN_COMMAND_CHARS: usize = 2_000;

/// Refuse environment names the policy does not allow (`policy.env`).
pub fn check_env_names<'a>(
    deps: &ToolDeps,
    ctx: &CallContext,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), ToolError> {
    for name in names {
        if let Err(e) = deps.policy.env.check(name) {
            ctx.audit.deny("policy.env", &e.to_string());
            return Err(ToolError::new(e.to_string()));
        }
    }
    Ok(())
}

/// The session image's identifiers rules can be scoped to: friendly name, image id, Docker
/// image name.
fn image_identifiers(session: &SessionRef) -> Vec<String> {
    let s = &session.session;
    let image = s.image.as_ref();
    [
        image.and_then(|i| i.friendly_name.clone()),
        image.and_then(|i| i.image_id.clone()),
        s.image_id.clone(),
        image.and_then(|i| i.name.clone()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn shown(command: &str) -> String {
    if command.chars().count() <= SHOWN_COMMAND_CHARS {
        return command.to_string();
    }
    let cut: String = command.chars().take(SHOWN_COMMAND_CHARS).collect();
    format!("{cut}… ({} bytes in all)", command.len())
}

fn about(finding: &Finding) -> String {
    if finding.subject.is_empty() {
        format!("rule \"{}\": {}", finding.rule_id, finding.reason)
    } else {
        format!(
            "rule \"{}\": {} (`{}`)",
            finding.rule_id, finding.reason, finding.subject
        )
    }
}

/// How an administrator could let this through.
fn how_to_allow(finding: &Finding) -> String {
    if finding.rule_id == UNRESOLVED_RULE {
        "rewrite the command so every command name is written out (no eval, no $VAR or $(…) as a command), or ask an administrator to set policy.commands.unresolved = \"allow\"".to_string()
    } else {
        format!(
            "ask an administrator to allow it: in [policy.commands] of the server's configuration, add a [[policy.commands.rules]] entry with id = \"{id}\" and decision = \"allow\" (optionally limited with roles or images), or list \"{id}\" in disabled_rules",
            id = finding.rule_id
        )
    }
}

/// Decide on `command` for this caller and session; ask for approval when the policy says
/// `confirm`. `Ok(())` means the command may run.
pub async fn vet_command(
    deps: &ToolDeps,
    ctx: &CallContext,
    session: &SessionRef,
    command: &str,
) -> Result<(), ToolError> {
    let image = image_identifiers(session);
    // Parsing a hostile 100 KiB command can take seconds of CPU (the parser's own deadline is
    // 5 s): judge it on a blocking thread so it never holds an async worker that other
    // clients' calls need.
    let policy = deps.policy.commands.shared_policy();
    let role = ctx.principal.role;
    let text = command.to_owned();
    let verdict = tokio::task::spawn_blocking(move || {
        policy.evaluate(
            &text,
            Scope {
                role,
                image: &image,
            },
        )
    })
    .await
    .map_err(|e| {
        ToolError::new(format!(
            "the command policy could not judge the command ({e}); nothing was run. This is a server bug: report it with the command text."
        ))
    })?;
    let Some(finding) = verdict.decisive().cloned() else {
        return Ok(());
    };
    match verdict.decision {
        Decision::Allow => Ok(()),
        Decision::Deny => {
            ctx.audit
                .deny(&format!("commands:{}", finding.rule_id), &finding.reason);
            Err(ToolError::new(format!(
                "command refused by the server's policy, {}. Nothing was run. If this is needed, {}.",
                about(&finding),
                how_to_allow(&finding)
            )))
        }
        Decision::Confirm => approve(ctx, session, command, &finding).await,
    }
}

/// The form the client shows its user; its derived schema is the elicitation's
/// `requestedSchema` (a flat object of primitive properties, as elicitation requires), and
/// an accepted answer's `content` is parsed into it.
#[derive(Debug, Deserialize, JsonSchema)]
struct ApprovalForm {
    /// Approve running the command shown.
    #[schemars(title = "Run this command", extend("default" = false))]
    approve: bool,
}

fn elicitation(session: &SessionRef, command: &str, finding: &Finding) -> Value {
    json!({
        "message": format!(
            "An agent wants to run this command in Kasm session {}:\n\n{}\n\nThe server's policy asks for your approval under {}.\nRun it?",
            session.kasm_id, shown(command), about(finding)
        ),
        "requestedSchema": super::schema::input::<ApprovalForm>(),
    })
}

/// Whether the client's answer approves: `accept` with a form whose box is ticked. An
/// accepted answer without a valid form (no `content`, no boolean `approve`) is not approval.
fn approves(answer: &Value) -> (&str, bool) {
    let action = answer.get("action").and_then(Value::as_str).unwrap_or("");
    let ticked = answer
        .get("content")
        .and_then(|c| ApprovalForm::deserialize(c).ok())
        .is_some_and(|form| form.approve);
    (action, action == "accept" && ticked)
}

async fn approve(
    ctx: &CallContext,
    session: &SessionRef,
    command: &str,
    finding: &Finding,
) -> Result<(), ToolError> {
    let asked = ctx
        .notifier
        .request_client_as(
            APPROVAL_KEY,
            "elicitation/create",
            elicitation(session, command, finding),
        )
        .await;
    let answer = match asked {
        Ok(answer) => answer,
        Err(ClientRequestError::InputRequired) => {
            // 2026-07-28: the router answers `input_required`; the retry brings the answer.
            return Err(ToolError::new("waiting for the user's approval"));
        }
        Err(
            error @ (ClientRequestError::CapabilityMissing(_)
            | ClientRequestError::Unsupported
            | ClientRequestError::ClientError(_)),
        ) => {
            // A client that never declared elicitation, has no channel back, or answered the
            // request with an error ("Elicitation not supported") cannot ask its user.
            let detail = match &error {
                ClientRequestError::ClientError(answer) => {
                    format!("it answered the approval request with an error: {answer}")
                }
                _ => "it did not declare the `elicitation` capability, or has no channel back from the server".to_string(),
            };
            ctx.audit.deny(
                &format!("commands:{}", finding.rule_id),
                &format!("needs approval, client cannot ask: {}", finding.reason),
            );
            return Err(ToolError::new(format!(
                "command refused: it needs a person's approval under {}, and this MCP client cannot ask for it ({detail}). Nothing was run. Use a client that supports elicitation, or {}.",
                about(finding),
                how_to_allow(finding)
            )));
        }
        Err(other) => {
            return Err(ToolError::new(format!(
                "command not run: it needs a person's approval under {}, and asking failed: {other}",
                about(finding)
            )));
        }
    };
    let (action, approved) = approves(&answer);
    // The audit event records who approved what: the client's answer under this rule.
    ctx.audit.update(|d| {
        d.approval = Some(format!(
            "{} by the client's user (elicitation) under rule {}",
            if approved { "approved" } else { "refused" },
            finding.rule_id
        ))
    });
    if approved {
        return Ok(());
    }
    ctx.audit.deny(
        &format!("commands:{}", finding.rule_id),
        &format!("approval {action:?}: {}", finding.reason),
    );
    Err(ToolError::new(match action {
        "decline" | "accept" => format!(
            "command refused: the user declined to run it ({}). Nothing was run.",
            about(finding)
        ),
        "cancel" => format!(
            "command not run: the approval request was cancelled ({}). Nothing was run.",
            about(finding)
        ),
        other => format!(
            "command not run: the client answered the approval request with {other:?}, not accept ({}).",
            about(finding)
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_schema_is_a_flat_form_with_one_required_boolean() {
        let schema = super::super::schema::input::<ApprovalForm>();
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "approve": {
                        "type": "boolean",
                        "title": "Run this command",
                        "description": "Approve running the command shown.",
                        "default": false
                    }
                },
                "required": ["approve"]
            })
        );
    }

    #[test]
    fn only_an_accepted_ticked_form_approves() {
        let cases = [
            (
                json!({"action": "accept", "content": {"approve": true}}),
                true,
            ),
            (
                json!({"action": "accept", "content": {"approve": false}}),
                false,
            ),
            (
                json!({"action": "accept", "content": {"approve": "yes"}}),
                false,
            ),
            (json!({"action": "accept", "content": {}}), false),
            (json!({"action": "accept"}), false),
            (
                json!({"action": "decline", "content": {"approve": true}}),
                false,
            ),
            (json!({"action": "cancel"}), false),
        ];
        for (answer, expected) in cases {
            assert_eq!(approves(&answer).1, expected, "{answer}");
        }
    }
}
