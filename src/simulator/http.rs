//! The simulator's axum router: `POST /api/public/{endpoint}` (also `/api/{endpoint}`, as
//! Kasm mounts its client API there too), CherryPy-style body handling and error pages,
//! fault injection, request counting, and the `/__simulator/faults` and `/__simulator/requests`
//! control endpoints.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value, json};

use super::api;
use super::auth;
use super::config::Faults;
use super::ctx::Shared;
use super::reply::{Reply, cherrypy_page};

/// The simulator's routes over its shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/public/{endpoint}", any(api_call))
        .route("/api/{endpoint}", any(api_call))
        .route("/__simulator/faults", get(get_faults).post(set_faults))
        .route("/__simulator/stats", get(get_stats))
        .route("/__simulator/requests", get(get_requests))
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    cherrypy_page(
        StatusCode::NOT_FOUND,
        &format!("The path '{path}' was not found."),
    )
}

/// Hang, delay or fail the call as the current faults say. `Some`: answer this instead.
async fn apply_faults(shared: &Shared) -> Option<Response> {
    let mut rx = shared.faults.subscribe();
    loop {
        let hang = rx.borrow_and_update().hang;
        if !hang {
            break;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    let faults = *rx.borrow();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate {
        return Some(Reply::crash().into_response());
    }
    None
}

/// CherryPy's `json_in`: a JSON object body, or an HTML error page.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(content_type.starts_with("application/json")
        || content_type.starts_with("text/javascript"))
    {
        return Err(Reply::Html(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected an entity of content type application/json, text/javascript".into(),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reply::crash()),
        Err(_) => Err(Reply::Html(
            StatusCode::BAD_REQUEST,
            "Invalid JSON document".into(),
        )),
    }
}

async fn api_call(
    State(shared): State<Arc<Shared>>,
    Path(endpoint): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if endpoint == "exec_command_kasm" {
        shared
            .exec_requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    shared.count(&endpoint);
    if let Some(fault) = apply_faults(&shared).await {
        return fault;
    }
    if method != Method::POST {
        return cherrypy_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "The path is only available with POST and a JSON body.",
        );
    }
    let body = match parse_body(&headers, &body) {
        Ok(body) => body,
        Err(page) => return page.into_response(),
    };
    match api::call(&shared, &endpoint, &headers, body).await {
        Some(reply) => reply.into_response(),
        None => not_found(uri).await,
    }
}

/// Only the primary key may read or change faults (headers or body credentials).
fn primary_only(
    shared: &Shared,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<(), Reply> {
    let key = auth::authenticate(&shared.keys, headers, body)?;
    if key.primary {
        Ok(())
    } else {
        Err(Reply::status_error(StatusCode::FORBIDDEN, "Access Denied"))
    }
}

/// Counters tests read: how many `exec_command_kasm` requests arrived.
async fn get_stats(State(shared): State<Arc<Shared>>) -> Response {
    let exec_requests = shared
        .exec_requests
        .load(std::sync::atomic::Ordering::SeqCst);
    axum::Json(json!({ "exec_requests": exec_requests })).into_response()
}

async fn get_faults(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(reply) = primary_only(&shared, &headers, &Map::new()) {
        return reply.into_response();
    }
    let faults = *shared.faults.borrow();
    axum::Json(json!(faults)).into_response()
}

async fn get_requests(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(reply) = primary_only(&shared, &headers, &Map::new()) {
        return reply.into_response();
    }
    axum::Json(json!(shared.request_counts())).into_response()
}

async fn set_faults(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let map = match parse_body(&headers, &body) {
        Ok(map) => map,
        Err(page) => return page.into_response(),
    };
    if let Err(reply) = primary_only(&shared, &headers, &map) {
        return reply.into_response();
    }
    let faults: Faults = match serde_json::from_value(Value::Object(map)) {
        Ok(f) => f,
        Err(e) => {
            return Reply::status_error(StatusCode::BAD_REQUEST, format!("invalid faults: {e}"))
                .into_response();
        }
    };
    if !(0.0..=1.0).contains(&faults.error_rate) {
        return Reply::status_error(
            StatusCode::BAD_REQUEST,
            "error_rate must be between 0 and 1",
        )
        .into_response();
    }
    shared.faults.send_replace(faults);
    tracing::info!(?faults, "simulator faults changed");
    axum::Json(json!(faults)).into_response()
}
