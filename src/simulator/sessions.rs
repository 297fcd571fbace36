//! Session endpoints: request, status (both version shapes), lists, lifecycle transitions
//! (stop/pause/resume/destroy with Kasm's precondition errors), keepalive and join.

use std::collections::BTreeMap;
use std::time::Instant;

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::config::{KasmVersion, random_hex};
use super::ctx::{Ctx, IdField};
use super::images::{self, TERMINAL_IMAGE_ID};
use super::render::{self, connect_url, normalized_kasm};
use super::reply::Reply;
use super::state::{KEEPALIVE_EXPIRATION, Phase, SessionRecord, Store};
use crate::kasm::permissions::names;

/// The `kasm_id` of the request: missing → `on_missing`, not a UUID → crash (as Kasm's DB).
pub fn kasm_id(ctx: &Ctx<'_>, on_missing: impl FnOnce() -> Reply) -> Result<String, Reply> {
    match ctx.id_field("kasm_id") {
        IdField::Valid(id) => Ok(id),
        IdField::Missing => Err(on_missing()),
        IdField::Invalid(_) => Err(Reply::crash()),
    }
}

/// Whether the acting user (if any) owns the session.
pub fn owns(ctx: &Ctx<'_>, s: &SessionRecord) -> bool {
    ctx.user.as_deref().is_none_or(|u| u == s.user_id)
}

fn fresh_token() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let s = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn choose_image(ctx: &Ctx<'_>, store: &Store, user_id: &str) -> Result<String, Reply> {
    match ctx.id_field("image_id") {
        IdField::Valid(id) => images::find(&id)
            .map(|i| i.image_id.to_string())
            .ok_or_else(|| Reply::error("Image Not Authorized")),
        IdField::Invalid(_) => Err(Reply::crash()),
        IdField::Missing => {
            let preferred = store
                .users
                .get(user_id)
                .and_then(|u| u.attributes.get("default_image"))
                .and_then(Value::as_str)
                .and_then(images::find)
                .map(|i| i.image_id);
            Ok(preferred.unwrap_or(TERMINAL_IMAGE_ID).to_string())
        }
    }
}

/// `request_kasm`: a new session, `starting` at once, `running` after the start delay.
pub async fn request_kasm(ctx: &Ctx<'_>) -> Reply {
    let kasm_id = random_hex(16);
    if let Err(e) = ctx.shared.sandbox.prepare(&kasm_id).await {
        tracing::error!(error = %e, "simulator: cannot create a session sandbox");
        return Reply::error("Unexpected Error Creating Kasm. Please contact an Administrator");
    }
    let reply = create_session(ctx, &kasm_id);
    if reply.is_err() {
        ctx.shared.sandbox.destroy(&kasm_id).await;
    }
    reply.unwrap_or_else(|r| r)
}

fn create_session(ctx: &Ctx<'_>, kasm_id: &str) -> Result<Reply, Reply> {
    let mut store = ctx.shared.store();
    let user_id = match &ctx.user {
        Some(u) => u.clone(),
        None => store.create_anonymous_user(),
    };
    let image_id = choose_image(ctx, &store, &user_id)?;
    let username = store
        .users
        .get(&user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    if store.sessions_of(&user_id).count() >= ctx.shared.max_kasms_per_user {
        return Err(Reply::error(format!(
            "Kasm limit exceeded for user: ({username})"
        )));
    }
    let mut environment = string_map(ctx.body.get("environment"));
    if let Some(url) = ctx.str_field("kasm_url") {
        environment.insert("KASM_URL".into(), url.to_string());
    }
    let share_id = (ctx.body.get("enable_sharing").and_then(Value::as_bool) == Some(true))
        .then(|| random_hex(4));
    let now = OffsetDateTime::now_utc();
    let octet = store.sessions.len() % 250 + 2;
    let mut session = SessionRecord {
        kasm_id: kasm_id.to_string(),
        user_id: user_id.clone(),
        image_id,
        phase: Phase::Running,
        share_id: share_id.clone(),
        session_token: fresh_token(),
        container_id: random_hex(32),
        container_ip: format!("172.18.0.{octet}"),
        server_id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
        start_date: now,
        keepalive_date: now,
        expiration_date: now + KEEPALIVE_EXPIRATION,
        environment,
    };
    session.start(Instant::now(), ctx.shared.start_delay);
    let body = json!({
        "kasm_id": kasm_id, "status": "starting", "share_id": share_id,
        "user_id": user_id, "username": username,
        "session_token": session.session_token,
        "kasm_url": connect_url(&session, &session.session_token),
    });
    if let Some(user) = store.users.get_mut(&user_id) {
        user.last_session = Some(now);
    }
    store.sessions.insert(kasm_id.to_string(), session);
    Ok(Reply::ok(body))
}

/// `get_kasm_status` (alias `get_user_kasm`).
pub fn get_kasm_status(ctx: &Ctx<'_>) -> Reply {
    let id = match kasm_id(ctx, || Reply::error("Invalid Request")) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let store = ctx.shared.store();
    let Some(s) = store.sessions.get(&id) else {
        return Reply::error("Could not find requested Kasm.");
    };
    if !owns(ctx, s) {
        return Reply::error("Access Denied");
    }
    let now = render::now();
    match s.phase {
        Phase::Running => Reply::ok(json!({
            "current_time": now,
            "kasm_url": connect_url(s, &fresh_token()),
            "kasm": normalized_kasm(s, &ctx.hostname),
        })),
        Phase::Starting { .. } => match ctx.shared.version {
            KasmVersion::V1_15 => Reply::error("This session is currently starting."),
            KasmVersion::V1_19 => Reply::ok(json!({
                "current_time": now,
                "kasm_url": connect_url(s, &fresh_token()),
                "kasm": normalized_kasm(s, &ctx.hostname),
                "operational_status": "starting",
                "operational_message": "Starting session",
                "operational_progress": s.phase.progress(Instant::now()),
            })),
        },
        Phase::Paused | Phase::Stopped => {
            Reply::ok(json!({ "operational_status": s.phase.word() }))
        }
    }
}

/// `get_kasms`: every session of the installation.
pub fn get_kasms(ctx: &Ctx<'_>) -> Reply {
    let store = ctx.shared.store();
    let kasms: Vec<Value> = store
        .sessions
        .values()
        .map(|s| {
            let username = store
                .users
                .get(&s.user_id)
                .map(|u| u.username.as_str())
                .unwrap_or_default();
            render::listed_kasm(s, username, &ctx.hostname)
        })
        .collect();
    Reply::ok(json!({ "current_time": render::now(), "kasms": kasms }))
}

/// `get_user_kasms`: the acting user's sessions.
pub fn get_user_kasms(ctx: &Ctx<'_>) -> Reply {
    let store = ctx.shared.store();
    let kasms: Vec<Value> = match &ctx.user {
        Some(user) => store
            .sessions_of(user)
            .map(|s| normalized_kasm(s, &ctx.hostname))
            .collect(),
        None => Vec::new(),
    };
    Reply::ok(json!({ "current_time": render::now(), "kasms": kasms }))
}

/// `destroy_kasm`: kill the session's processes, remove its sandbox, forget it.
pub async fn destroy_kasm(ctx: &Ctx<'_>) -> Reply {
    let id = match kasm_id(ctx, || Reply::error("Invalid Request")) {
        Ok(id) => id,
        Err(r) => return r,
    };
    {
        let mut store = ctx.shared.store();
        let Some(s) = store.sessions.get(&id) else {
            return Reply::error(format!("No session found with kasm_id ({id})"));
        };
        if !owns(ctx, s) && !ctx.has(names::SESSIONS_DELETE) {
            return Reply::error("Unauthorized attempt to delete session");
        }
        store.sessions.remove(&id);
    }
    ctx.shared.sandbox.destroy(&id).await;
    Reply::empty_object()
}

/// The three lifecycle commands.
#[derive(Clone, Copy)]
enum Lifecycle {
    Stop,
    Pause,
    Resume,
}

fn lifecycle(ctx: &Ctx<'_>, command: Lifecycle) -> Reply {
    let id = match kasm_id(ctx, || Reply::error("Invalid Request")) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let admin = ctx.has(names::SESSIONS_MODIFY);
    let mut store = ctx.shared.store();
    let Some(s) = store.sessions.get_mut(&id) else {
        return Reply::error(format!("No session found with kasm_id ({id})"));
    };
    if !owns(ctx, s) && !admin {
        return Reply::error(format!("No session found with kasm_id ({id})"));
    }
    // The group settings allow_kasm_stop / allow_kasm_pause default to false in Kasm.
    match command {
        Lifecycle::Stop if !admin => {
            return Reply::error("User is not authorized to issue a stop request");
        }
        Lifecycle::Pause if !admin => {
            return Reply::error("User is not authorized to issue a pause request");
        }
        _ => {}
    }
    let sandbox = &ctx.shared.sandbox;
    match (command, s.phase) {
        (Lifecycle::Stop, Phase::Running | Phase::Paused) => {
            s.phase = Phase::Stopped;
            sandbox.signal(&id, Signal::SIGKILL);
        }
        (Lifecycle::Stop, _) => {
            return Reply::error("Session is not in a valid state to be stopped");
        }
        (Lifecycle::Pause, Phase::Running) => {
            s.phase = Phase::Paused;
            sandbox.signal(&id, Signal::SIGSTOP);
        }
        (Lifecycle::Pause, _) => {
            return Reply::error("Session is not in a valid state to be paused");
        }
        (Lifecycle::Resume, Phase::Paused | Phase::Stopped) => {
            sandbox.signal(&id, Signal::SIGCONT);
            s.start(Instant::now(), ctx.shared.start_delay);
            s.touch();
        }
        (Lifecycle::Resume, phase) => {
            return Reply::error(format!(
                "Session ({id}) is in status ({}) and cannot be resumed",
                phase.word()
            ));
        }
    }
    Reply::empty_object()
}

pub fn stop_kasm(ctx: &Ctx<'_>) -> Reply {
    lifecycle(ctx, Lifecycle::Stop)
}

pub fn pause_kasm(ctx: &Ctx<'_>) -> Reply {
    lifecycle(ctx, Lifecycle::Pause)
}

pub fn resume_kasm(ctx: &Ctx<'_>) -> Reply {
    lifecycle(ctx, Lifecycle::Resume)
}

/// `keepalive`: push the expiration out.
pub fn keepalive(ctx: &Ctx<'_>) -> Reply {
    let id = match kasm_id(ctx, || {
        Reply::status_error(
            axum::http::StatusCode::BAD_REQUEST,
            "Invalid Request: Missing required parameters",
        )
    }) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut store = ctx.shared.store();
    let Some(s) = store.sessions.get_mut(&id).filter(|s| owns(ctx, s)) else {
        return Reply::error("Could not find requested Kasm.");
    };
    if matches!(s.phase, Phase::Paused | Phase::Stopped) {
        return Reply::error(format!(
            "Kasm ({}) is currently scheduled to be deleted. Can not honor keepalive request",
            &id[..6]
        ));
    }
    s.touch();
    Reply::ok(json!({ "usage_reached": false }))
}

/// `join_kasm`: a (view-only) seat in a shared session.
pub fn join_kasm(ctx: &Ctx<'_>) -> Reply {
    let Some(share_id) = ctx.str_field("share_id").map(str::to_string) else {
        return Reply::error("Missing Parameters: share_id is missing");
    };
    let mut store = ctx.shared.store();
    let Some(s) = store.find_share(&share_id).cloned() else {
        return Reply::error("Could not find requested Kasm.");
    };
    match s.phase {
        Phase::Running => {}
        Phase::Starting { .. } => return Reply::error("This session is currently starting."),
        Phase::Paused | Phase::Stopped => return Reply::error("Kasm is not running"),
    }
    let user_id = match &ctx.user {
        Some(u) => u.clone(),
        None => store.create_anonymous_user(),
    };
    let username = store
        .users
        .get(&user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let owner = store
        .users
        .get(&s.user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let token = fresh_token();
    Reply::ok(json!({
        "current_time": render::now(),
        "kasm": render::shared_kasm(&s, &owner, &ctx.hostname),
        "user_id": user_id, "username": username, "session_token": token,
        "kasm_url": format!("/#/connect/join/{share_id}/{user_id}/{token}"),
    }))
}
