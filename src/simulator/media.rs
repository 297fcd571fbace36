//! Endpoints that read a running session's desktop: screenshot (a generated JPEG), KasmVNC
//! frame and bottleneck statistics (plausible shapes), and session recordings (none are kept).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ctx::{Ctx, IdField};
use super::reply::Reply;
use super::screenshot;
use super::sessions::{kasm_id, owns};
use super::state::Phase;

fn dimension(ctx: &Ctx<'_>, name: &str) -> u32 {
    match ctx.body.get(name) {
        Some(Value::Number(n)) => n.as_u64().map_or(300, |n| n.min(100_000) as u32),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(300),
        _ => 300,
    }
}

/// `get_kasm_screenshot`: JPEG bytes; failures are bodiless 400/404/500 like 1.15.
pub async fn get_kasm_screenshot(ctx: &Ctx<'_>) -> Reply {
    let id = match ctx.id_field("kasm_id") {
        IdField::Valid(id) => id,
        IdField::Missing => return Reply::Empty(StatusCode::BAD_REQUEST),
        IdField::Invalid(_) => return Reply::Empty(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let running = {
        let store = ctx.shared.store();
        match store.sessions.get(&id).filter(|s| owns(ctx, s)) {
            None => return Reply::Empty(StatusCode::NOT_FOUND),
            Some(s) => s.phase == Phase::Running,
        }
    };
    if !running {
        return Reply::Empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let (w, h) = (dimension(ctx, "width"), dimension(ctx, "height"));
    match tokio::task::spawn_blocking(move || screenshot::render(&id, w, h)).await {
        Ok(Ok(bytes)) => Reply::Jpeg(bytes),
        _ => Reply::Empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The common gate of the KasmVNC statistics endpoints.
fn running_session(ctx: &Ctx<'_>) -> Result<String, Reply> {
    let id = kasm_id(ctx, || Reply::error("Could not find requested Kasm."))?;
    let store = ctx.shared.store();
    let Some(s) = store.sessions.get(&id) else {
        return Err(Reply::error("Could not find requested Kasm."));
    };
    if !owns(ctx, s) {
        return Err(Reply::error("Access Denied"));
    }
    match s.phase {
        Phase::Running => Ok(id),
        Phase::Starting { .. } => Err(Reply::error("This session is currently starting.")),
        Phase::Paused | Phase::Stopped => Err(Reply::error("Kasm is not responding")),
    }
}

/// A small jitter so repeated calls look like live measurements.
fn jitter(base: u64) -> u64 {
    base + rand::random::<u64>() % (base / 2 + 1)
}

/// `get_kasm_frame_stats`: KasmVNC's frame timings, flattened.
pub fn get_kasm_frame_stats(ctx: &Ctx<'_>) -> Reply {
    if let Err(r) = running_session(ctx) {
        return r;
    }
    let client = ctx.str_field("client").unwrap_or("auto");
    let timing = |base| json!({"min": base, "avg": jitter(base), "max": jitter(base) * 2});
    Reply::ok(json!({
        "frame": {"resx": 1280, "resy": 720, "changed": jitter(40), "server_time": jitter(8)},
        "clients": [{"client": client, "client_time": jitter(3), "ping": jitter(12),
                     "processes": [{"process": "frame_decode", "time": jitter(2)}]}],
        "analysis": timing(1), "screenshot": timing(2), "encoding_total": timing(5),
        "videoscaling": timing(0), "tightjpegencoding": timing(3), "tightwebpencoding": timing(4),
    }))
}

/// `get_kasm_bottleneck_stats`: `{user: {client: [cpu, cpu_total, network, network_total]}}`.
pub fn get_kasm_bottleneck_stats(ctx: &Ctx<'_>) -> Reply {
    if let Err(r) = running_session(ctx) {
        return r;
    }
    Reply::ok(json!({
        "kasm_user": {"127.0.0.1_1": [jitter(20), 100, jitter(60), 100]}
    }))
}

/// `get_session_recordings`: the simulator records nothing, so the list is empty.
pub fn get_session_recordings(ctx: &Ctx<'_>) -> Reply {
    match ctx.id_field("target_kasm_id") {
        IdField::Missing => Reply::error("Invalid Request. Missing required parameters"),
        IdField::Invalid(_) => Reply::error("Invalid Kasm ID"),
        IdField::Valid(_) => Reply::ok(json!({
            "session_recordings": [], "items": 0, "page": 1, "per_page": 10,
            "total_duration": 0,
        })),
    }
}
