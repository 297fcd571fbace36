//! One classic API call: authentication, authorisation, the acting user and the dispatch from
//! endpoint name to handler (the state and context the handlers see are in `ctx.rs`).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::auth::{self, KeyInfo};
use super::ctx::{Ctx, Shared};
use super::reply::Reply;
use super::{exec, media, sessions, users};
use crate::kasm::normalize_id;
use crate::kasm::permissions::{self, names};

/// Endpoints the simulator answers, with aliases mapped to their table entry.
fn spec_for(endpoint: &str) -> Option<&'static permissions::EndpointSpec> {
    let canonical = match endpoint {
        "get_user_kasm" => "get_kasm_status",
        other => other,
    };
    permissions::endpoint(canonical)
}

/// Authenticate, authorise and run one call. `None`: no such endpoint (CherryPy 404).
pub async fn call(
    shared: &Shared,
    endpoint: &str,
    headers: &HeaderMap,
    body: Map<String, Value>,
) -> Option<Reply> {
    let spec = spec_for(endpoint)?;
    let key = match auth::authenticate(&shared.keys, headers, &body) {
        Ok(key) => key,
        Err(reply) => return Some(reply),
    };
    if let Err(reply) = auth::authorize(key, spec, shared.missing_permission_status) {
        return Some(reply);
    }
    let user = match acting_user(shared, key, &body) {
        Ok(user) => user,
        Err(reply) => return Some(reply),
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let hostname = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| host.clone());
    let ctx = Ctx {
        shared,
        key,
        body,
        user,
        hostname,
        host,
    };
    route(spec.name, &ctx).await
}

/// `user_id` in the body: needs Users Auth Session, must be a UUID and an existing user.
fn acting_user(
    shared: &Shared,
    key: &KeyInfo,
    body: &Map<String, Value>,
) -> Result<Option<String>, Reply> {
    let raw = match body.get("user_id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if !key.has(names::USERS_AUTH_SESSION) {
        return Err(auth::impersonation_denied(key));
    }
    let Ok(id) = normalize_id("user_id", &raw) else {
        return Err(Reply::crash());
    };
    if shared.store().users.contains_key(&id) {
        Ok(Some(id))
    } else {
        Err(Reply::status_error(
            StatusCode::BAD_REQUEST,
            format!("Invalid user_id ({raw})"),
        ))
    }
}

async fn route(endpoint: &str, ctx: &Ctx<'_>) -> Option<Reply> {
    let reply = match endpoint {
        "request_kasm" => sessions::request_kasm(ctx).await,
        "get_kasm_status" => sessions::get_kasm_status(ctx),
        "get_kasms" => sessions::get_kasms(ctx),
        "get_user_kasms" => sessions::get_user_kasms(ctx),
        "destroy_kasm" => sessions::destroy_kasm(ctx).await,
        "stop_kasm" => sessions::stop_kasm(ctx),
        "pause_kasm" => sessions::pause_kasm(ctx),
        "resume_kasm" => sessions::resume_kasm(ctx),
        "keepalive" => sessions::keepalive(ctx),
        "join_kasm" => sessions::join_kasm(ctx),
        "exec_command_kasm" => exec::exec_command_kasm(ctx),
        "get_kasm_screenshot" => media::get_kasm_screenshot(ctx).await,
        "get_kasm_frame_stats" => media::get_kasm_frame_stats(ctx),
        "get_kasm_bottleneck_stats" => media::get_kasm_bottleneck_stats(ctx),
        "get_session_recordings" => media::get_session_recordings(ctx),
        "get_images" => users::get_images(),
        "get_users" => users::get_users(ctx),
        "get_user" => users::get_user(ctx),
        "create_user" => users::create_user(ctx),
        "update_user" => users::update_user(ctx),
        "delete_user" => users::delete_user(ctx).await,
        "logout_user" => users::logout_user(ctx),
        "get_login" => users::get_login(ctx),
        "get_attributes" => users::get_attributes(ctx),
        "update_user_attributes" => users::update_user_attributes(ctx),
        "add_user_group" => users::add_user_group(ctx, true),
        "remove_user_group" => users::add_user_group(ctx, false),
        _ => return None,
    };
    Some(reply)
}
