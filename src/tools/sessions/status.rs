//! Following sessions: `get_session_status` (one session's state, polled while it starts)
//! and the listings `list_user_sessions` and `list_all_sessions`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::IdArgs;
use crate::kasm::UserId;
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use crate::policy::Role;
use crate::tools::ToolDeps;
use crate::tools::access::{
    SESSION_URL_WITHHELD, SessionRef, absolute_url, acting_user, find_session, may_see_session_url,
};
use crate::tools::schema::{self, NoArgs, parse_args};
use crate::tools::session_view::{SessionList, SessionView};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler, structured};

// ---- get_session_status --------------------------------------------------------------------

const STATUS: &str = "get_session_status";

/// One session's state, as `get_session_status` and the `kasm://sessions/{kasm_id}`
/// resource show it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusView {
    #[serde(flatten)]
    session: SessionView,
    /// A fresh login link while the session runs (null otherwise). Left out for viewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    session_url: Option<Option<String>>,
    /// Why session_url is left out (viewers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// Kasm's progress message while the session starts.
    message: Option<String>,
    /// Kasm's start progress in percent.
    progress: Option<i64>,
}

pub fn status(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(STATUS, Role::Viewer)
        .title("Get a session's status")
        .description("Show one session's state: status (requested, starting, running, paused, stopped…), image, owner, start/keepalive/expiration dates and, when running, a fresh session URL. The session URL is a login credential (it embeds a Kasm session token; whoever opens it controls the desktop), so it is returned only to operator and admin callers: viewers get a note instead. Use it to check a session before working in it, or to follow a start. One or two cheap Kasm calls; read-only.")
        .input_schema(schema::input::<IdArgs>())
        .output_schema(schema::output::<StatusView>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(session_status))
}

async fn session_status(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: IdArgs = parse_args(STATUS, args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    let view = status_json(&deps, &session, ctx.principal.role).await?;
    Ok(ToolOutput::structured(view.into_value()))
}

impl StatusView {
    /// The view as `serde_json::to_value` gives it (the same map, so the same bytes on the
    /// wire), built by moving its strings in instead of running the serializer over copies.
    /// `tests::into_value_is_to_value` pins it to the derived `Serialize`.
    fn into_value(self) -> Value {
        let mut map = self.session.into_map();
        if let Some(url) = self.session_url {
            map.insert("session_url".into(), url.map_or(Value::Null, Value::String));
        }
        if let Some(note) = self.note {
            map.insert("note".into(), Value::String(note));
        }
        map.insert(
            "message".into(),
            self.message.map_or(Value::Null, Value::String),
        );
        map.insert(
            "progress".into(),
            self.progress.map_or(Value::Null, Value::from),
        );
        Value::Object(map)
    }
}

/// The status view of a session (shared with the session-status resource), from the
/// `get_kasm_status` answer [`find_session`] got: no further Kasm call. The session URL is
/// included only for roles that [`may_see_session_url`]; others get a `note` saying why.
pub async fn status_json(
    deps: &ToolDeps,
    session: &SessionRef,
    role: Role,
) -> Result<StatusView, ToolError> {
    let mut view = SessionView::of(&session.session);
    let live = &session.live;
    let (status, url, message, progress) = (
        session.status().to_string(),
        &live.kasm_url,
        live.message.clone(),
        live.progress,
    );
    view.status = Some(status);
    let (session_url, note) = if may_see_session_url(role) {
        (Some(url.as_ref().map(|u| absolute_url(deps, u))), None)
    } else {
        (None, Some(SESSION_URL_WITHHELD.to_string()))
    };
    Ok(StatusView {
        session: view,
        session_url,
        note,
        message,
        progress: progress.map(i64::from),
    })
}

// ---- listings ------------------------------------------------------------------------------

const LIST_USER: &str = "list_user_sessions";
const LIST_ALL: &str = "list_all_sessions";

/// Arguments of `list_user_sessions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListUserArgs {
    /// Admins only: list another Kasm user's sessions. Default: the user this server acts as.
    #[serde(default)]
    user_id: Option<UserId>,
}

pub fn list_user(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(LIST_USER, Role::Viewer)
        .title("List my sessions")
        .description("List the sessions of the Kasm user this server acts as, with kasm_id, status, image and dates. Start here to find a kasm_id to work with, or to see whether a session is already running before creating another. One Kasm call; read-only.")
        .input_schema(schema::input::<ListUserArgs>())
        .output_schema(schema::output::<SessionList>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(list_user_sessions))
}

async fn list_user_sessions(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: ListUserArgs = parse_args(LIST_USER, args)?;
    let user = match args.user_id {
        Some(other) => {
            if !crate::policy::sees_every_session(ctx.principal.role) {
                return Err(ToolError::new(
                    "only admin principals may list another user's sessions; omit user_id to list your own",
                ));
            }
            other
        }
        None => acting_user(&deps, &ctx)?,
    };
    let sessions = deps.kasm.get_user_kasms(user.as_str()).await?;
    structured(&SessionList::of(&sessions))
}

pub fn list_all(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(LIST_ALL, Role::Admin)
        .title("List all sessions (admin)")
        .description("List every session on the Kasm installation, of all users, with owner, status, image and dates. For administrators auditing usage or cleaning up. One Kasm call (needs the API key's Sessions View permission); read-only.")
        .input_schema(schema::input::<NoArgs>())
        .output_schema(schema::output::<SessionList>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(list_all_sessions))
}

async fn list_all_sessions(
    deps: Arc<ToolDeps>,
    _ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let NoArgs {} = parse_args(LIST_ALL, args)?;
    let sessions = deps.kasm.get_kasms().await?;
    structured(&SessionList::of(&sessions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kasm::Session;

    /// The map built by moving equals the derived `Serialize`'s, for every combination of the
    /// optional fields (the pretty text and the wire bytes are written from it).
    #[test]
    fn into_value_is_to_value() {
        let session = Session {
            kasm_id: "8f6c".into(),
            user_id: Some("u".into()),
            operational_status: Some("running".into()),
            hostname: Some("h\n\"x\"".into()),
            ..Session::default()
        };
        let urls = [
            None,
            Some(None),
            Some(Some("https://k/#/connect/a".to_string())),
        ];
        let notes = [None, Some(SESSION_URL_WITHHELD.to_string())];
        for session_url in urls {
            for note in notes.clone() {
                for (message, progress) in [(None, None), (Some("Pulling".to_string()), Some(40))] {
                    let view = StatusView {
                        session: SessionView::of(&session),
                        session_url: session_url.clone(),
                        note: note.clone(),
                        message,
                        progress,
                    };
                    let expected = serde_json::to_value(&view).unwrap();
                    let expected_text = serde_json::to_string_pretty(&expected).unwrap();
                    let got = view.into_value();
                    assert_eq!(got, expected);
                    assert_eq!(serde_json::to_string_pretty(&got).unwrap(), expected_text);
                    assert_eq!(got.to_string(), expected.to_string());
                }
            }
        }
    }
}
