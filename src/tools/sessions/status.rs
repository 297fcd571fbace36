//! Following sessions: `get_session_status` (one session's state, polled while it starts)
//! and the listings `list_user_sessions` and `list_all_sessions`.

use std::sync::{Arc, LazyLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::IdArgs;
use crate::kasm::UserId;
use crate::mcp::{
    CallContext, CallResult, FlatKeys, RawToolResult, Scalar, Tool, ToolAnnotations, ToolOutput,
    ToolSpec,
};
use crate::policy::Role;
use crate::tools::ToolDeps;
use crate::tools::access::{
    SESSION_URL_WITHHELD, SessionRef, absolute_url, acting_user, find_session, may_see_session_url,
};
use crate::tools::schema::{self, NoArgs, parse_args};
use crate::tools::session_view::{SessionFields, SessionList, SessionView};
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
    FnTool::shared_raw(
        spec,
        deps,
        handler!(session_status),
        handler!(session_status_raw),
    )
}

async fn status_view(
    deps: &ToolDeps,
    ctx: &CallContext,
    args: Map<String, Value>,
) -> Result<StatusView, ToolError> {
    let args: IdArgs = parse_args(STATUS, args)?;
    let session = find_session(deps, ctx, &args.kasm_id).await?;
    Ok(status_json(deps, &session, ctx.principal.role))
}

async fn session_status(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let view = status_view(&deps, &ctx, args).await?;
    Ok(ToolOutput::structured(view.into_value()))
}

/// The router's call: the same result, written as bytes from the session's own strings
/// (`tests::raw_result_is_the_value_path`).
async fn session_status_raw(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> Result<CallResult, ToolError> {
    let args: IdArgs = parse_args(STATUS, args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    let fields = status_fields(&deps, &session, ctx.principal.role);
    Ok(CallResult::Raw(fields.raw_result()))
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

/// A [`StatusView`]'s fields, borrowed from the session (the absolute session URL is the one
/// value of its own): what [`status_json`] copies into the view, and what the router's call
/// writes as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusFields<'a> {
    session: SessionFields<'a>,
    session_url: Option<Option<String>>,
    note: Option<&'a str>,
    message: Option<&'a str>,
    progress: Option<i64>,
}

impl<'a> StatusFields<'a> {
    fn to_view(&self) -> StatusView {
        StatusView {
            session: self.session.to_view(),
            session_url: self.session_url.clone(),
            note: self.note.map(str::to_string),
            message: self.message.map(str::to_string),
            progress: self.progress,
        }
    }

    /// The `CallToolResult` of [`ToolOutput::structured`] of [`StatusView::into_value`] of
    /// [`StatusFields::to_view`], written straight from the fields (the keys in serde_json's
    /// map order).
    fn raw_result(&self) -> RawToolResult {
        let s = &self.session;
        let text = |value: Option<&'a str>| Some(Scalar::text(value));
        // One value per key of `STATUS_KEYS`, in its order.
        STATUS_KEYS.result(&[
            text(s.docker_image),
            text(s.expiration_date),
            text(s.hostname),
            text(s.image_id),
            text(s.image_name),
            Some(Scalar::Text(s.kasm_id)),
            text(s.keepalive_date),
            text(self.message),
            self.note.map(Scalar::Text),
            Some(self.progress.map_or(Scalar::Null, Scalar::Int)),
            // Left out (viewers), null (not running) or the link.
            self.session_url
                .as_ref()
                .map(|url| Scalar::text(url.as_deref())),
            text(s.share_id),
            text(s.start_date),
            text(s.status),
            text(s.user_id),
            text(s.username),
        ])
    }
}

/// The keys of the status result, in serde_json's map order (sorted).
static STATUS_KEYS: LazyLock<FlatKeys<'static>> = LazyLock::new(|| {
    FlatKeys::new(&[
        "docker_image",
        "expiration_date",
        "hostname",
        "image_id",
        "image_name",
        "kasm_id",
        "keepalive_date",
        "message",
        "note",
        "progress",
        "session_url",
        "share_id",
        "start_date",
        "status",
        "user_id",
        "username",
    ])
});

/// The status fields of a session, from the `get_kasm_status` answer [`find_session`] got:
/// no further Kasm call. The session URL is included only for roles that
/// [`may_see_session_url`]; others get a `note` saying why.
fn status_fields<'a>(deps: &ToolDeps, session: &'a SessionRef, role: Role) -> StatusFields<'a> {
    let mut fields = SessionFields::of(&session.session);
    fields.status = Some(session.status());
    let live = &session.live;
    let (session_url, note) = if may_see_session_url(role) {
        let url = live.kasm_url.as_ref().map(|u| absolute_url(deps, u));
        (Some(url), None)
    } else {
        (None, Some(SESSION_URL_WITHHELD))
    };
    StatusFields {
        session: fields,
        session_url,
        note,
        message: live.message.as_deref(),
        progress: live.progress.map(i64::from),
    }
}

/// The status view of a session (shared with the session-status resource): see
/// [`status_fields`]. It makes no Kasm call and cannot fail.
pub fn status_json(deps: &ToolDeps, session: &SessionRef, role: Role) -> StatusView {
    status_fields(deps, session, role).to_view()
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
    use crate::mcp::RawResponse;
    use crate::mcp::jsonrpc::{RequestId, success};

    /// A view whose every field holds another of `texts` (field `i` the `(k + 7 i)`th).
    fn session_view(texts: &[Option<&str>], k: usize) -> SessionView {
        let t = |i: usize| texts[(k + 7 * i) % texts.len()].map(str::to_string);
        SessionView {
            kasm_id: t(0).unwrap_or_else(|| "8f6c".into()),
            user_id: t(1),
            username: t(2),
            status: t(3),
            image_id: t(4),
            image_name: t(5),
            docker_image: t(6),
            hostname: t(7),
            start_date: t(8),
            keepalive_date: t(9),
            expiration_date: t(10),
            share_id: t(11),
        }
    }

    /// The fields of a view, borrowed (what `status_fields` gives for the session the view
    /// was copied from).
    fn fields(view: &StatusView) -> StatusFields<'_> {
        StatusFields {
            session: view.session.fields(),
            session_url: view.session_url.clone(),
            note: view.note.as_deref(),
            message: view.message.as_deref(),
            progress: view.progress,
        }
    }

    /// What the router wrote before: the result `Value` of the value path, in its
    /// `jsonrpc::success` envelope, as `rpc::json_text` serialises it.
    fn old_answer(id: &RequestId, view: StatusView) -> String {
        let result = ToolOutput::structured(view.into_value()).into_json();
        crate::transport::rpc::json_text(&success(id, result))
    }

    /// The answer written as bytes is the value path's, byte for byte: every optional field
    /// left out, null or set, every field holding odd text (escapes, control characters,
    /// quotes, unicode, long), extreme progress values, number and string request ids.
    #[test]
    fn raw_result_is_the_value_path() {
        let odd = crate::mcp::tool::tests::odd_strings();
        let mut texts: Vec<Option<&str>> = vec![None];
        texts.extend(odd.iter().map(|s| Some(s.as_str())));
        let ids = [RequestId::Number(7), RequestId::Text("r\"1\u{1}é".into())];
        let mut checked = 0;
        for k in 0..texts.len() {
            let text = |i: usize| texts[(k + 7 * i) % texts.len()].map(str::to_string);
            let urls = [None, Some(None), Some(text(12))];
            let notes = [None, Some(SESSION_URL_WITHHELD.to_string()), text(13)];
            for session_url in &urls {
                for note in &notes {
                    for progress in [
                        None,
                        Some(0),
                        Some(40),
                        Some(-1),
                        Some(i64::MAX),
                        Some(i64::MIN),
                    ] {
                        let view = || StatusView {
                            session: session_view(&texts, k),
                            session_url: session_url.clone(),
                            note: note.clone(),
                            message: text(14),
                            progress,
                        };
                        let raw = fields(&view()).raw_result();
                        assert_eq!(
                            serde_json::to_value(fields(&view()).to_view()).unwrap(),
                            serde_json::to_value(view()).unwrap()
                        );
                        assert_eq!(
                            raw.as_str(),
                            ToolOutput::structured(view().into_value())
                                .into_json()
                                .to_string()
                        );
                        for id in &ids {
                            assert_eq!(
                                RawResponse::success_text(id, raw.as_str()).as_str(),
                                old_answer(id, view())
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

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
