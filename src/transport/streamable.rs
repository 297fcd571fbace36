//! Streamable HTTP on `/mcp` (2025-03-26 … 2025-11-25, and stateless 2026-07-28).
//!
//! POST carries one JSON-RPC message (or a 2025-03-26 batch). A request is answered with
//! `application/json`, unless the router emits a notification (progress, log message, or a
//! server→client request) before it finishes, or is still running after one keep-alive
//! interval: then the answer switches to a `text/event-stream` that carries those messages,
//! keep-alive comments, and then the response (see [`super::answer`]). Notifications and
//! responses from the client get 202. GET gets 405 (no standalone stream); DELETE ends a
//! session.
//!
//! Sessions: `initialize` (legacy revisions) returns a sealed `Mcp-Session-Id` (see
//! [`super::session`]); a later request with a forged, foreign or expired id gets 404 so the
//! client re-initializes; requests without an id are served statelessly. 2026-07-28 requests
//! ignore the header, and closing their response stream cancels the work (the task is aborted);
//! for older revisions a closed stream does not cancel (the spec says so): the work finishes.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::accounting;
use super::answer::{Streaming, Work, WorkFailed, final_answer};
use super::body::Body;
use super::origin::{Peer, origin};
use super::posted::Posted;
use super::rpc::{self, json_response};
use super::shared_sessions;
use super::sse::sse_response;
use super::state::TransportState;
use crate::mcp::{Handled, Method, RequestMeta};
use crate::policy::Principal;

/// `Mcp-Session-Id`.
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`.
pub const PROTOCOL_VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");

fn header_str(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The `Mcp-Param-<Name>` headers (2026-07-28 `x-mcp-header` arguments) as (`<Name>`, value)
/// pairs, for the router to check against the tool-call arguments.
fn param_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let suffix = name.as_str().strip_prefix("mcp-param-")?;
            Some((
                suffix.to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect()
}

/// What the client's `Accept` header allows.
#[derive(Debug, Clone, Copy)]
struct Accepts {
    json: bool,
    sse: bool,
}

fn accepts(headers: &HeaderMap) -> Accepts {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Accepts {
            json: true,
            sse: false,
        };
    };
    let mut result = Accepts {
        json: false,
        sse: false,
    };
    // Byte splits and case-insensitive comparisons: no lowercased copy per item.
    for item in accept.as_bytes().split(|&b| b == b',') {
        let mime = item
            .split(|&b| b == b';')
            .next()
            .unwrap_or(&[])
            .trim_ascii();
        let is = |name: &str| mime.eq_ignore_ascii_case(name.as_bytes());
        if is("*/*") {
            result.json = true;
            result.sse = true;
        } else if is("application/json") || is("application/*") {
            result.json = true;
        } else if is("text/event-stream") || is("text/*") {
            result.sse = true;
        }
    }
    result
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /mcp`.
pub async fn post(
    State(state): State<Arc<TransportState>>,
    Extension(principal): Extension<Principal>,
    peer: Peer,
    Posted { headers, body }: Posted,
) -> Response {
    if !is_json_content_type(&headers) {
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &rpc::error_body(
                Value::Null,
                rpc::INVALID_REQUEST,
                "Content-Type must be application/json",
                None,
            ),
        );
    }
    let accepts = accepts(&headers);
    if !accepts.json && !accepts.sse {
        return json_response(
            StatusCode::NOT_ACCEPTABLE,
            &rpc::error_body(
                Value::Null,
                rpc::INVALID_REQUEST,
                "Accept must include application/json and text/event-stream",
                None,
            ),
        );
    }
    let message = match rpc::parse_body(body, state.max_body_bytes) {
        Ok(message) => message,
        Err(response) => return *response,
    };
    let version = header_str(&headers, &PROTOCOL_VERSION_HEADER);
    if let Some(v) = &version
        && !rpc::SUPPORTED_VERSIONS.contains(&v.as_str())
    {
        return json_response(
            StatusCode::BAD_REQUEST,
            &rpc::error_body(
                rpc::id(&message),
                rpc::UNSUPPORTED_PROTOCOL_VERSION,
                &format!("unsupported MCP-Protocol-Version {v:?}"),
                Some(json!({ "supported": rpc::SUPPORTED_VERSIONS, "requested": v })),
            ),
        );
    }
    let modern = rpc::closing_stream_cancels(version.as_deref());
    let is_initialize = rpc::method(&message).and_then(Method::parse) == Some(Method::Initialize);

    let mut session_key = None;
    if !modern
        && !is_initialize
        && let Some(presented) = header_str(&headers, &SESSION_HEADER)
    {
        match state.sessions.verify(&presented, &principal.name) {
            Ok(session) => {
                let key = self::session_key(&principal, &session.nonce);
                if let Some(cluster) = &state.cluster
                    && let Err(response) =
                        shared_session(&state, cluster, &session, &key, &message).await
                {
                    return response;
                }
                session_key = Some(key);
            }
            Err(error) => {
                return json_response(
                    StatusCode::NOT_FOUND,
                    &rpc::error_body(
                        rpc::id(&message),
                        rpc::INVALID_REQUEST,
                        &format!("unknown session ({error}); send initialize again"),
                        None,
                    ),
                );
            }
        }
    }

    let pending = match accounting::admit(&state, &principal, &message).await {
        Ok(pending) => pending,
        Err(response) => return *response,
    };

    let id = rpc::id(&message);
    let is_request = rpc::contains_request(&message);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // A sender kept here until the first wait is over: the router's own senders (in the
    // request's meta, the call's notifier) are dropped inside the work's last poll, and the
    // last sender's drop wakes the receiver's task — this very task, mid-poll, which the
    // runtime then queues again and hands to another (sleeping) worker thread to take: one
    // needless cross-thread wake-up and poll per request. See `quiet_close`.
    let held = tx.clone();
    let meta = RequestMeta {
        principal: principal.clone(),
        notifications: tx,
        session_key,
        protocol_version_header: version,
        mcp_method_header: header_str(&headers, &MCP_METHOD_HEADER),
        mcp_name_header: header_str(&headers, &MCP_NAME_HEADER),
        origin: origin(&headers, &peer),
    };
    let mut work = Work::start(
        &state.shutdown,
        state.server.clone(),
        message,
        meta,
        param_headers(&headers),
        pending,
        modern,
    );

    // Stream only when the client takes SSE, the message is a request, and it is not
    // `initialize` (whose response must carry the session header).
    let may_stream = accepts.sse && is_request && !is_initialize;
    if !may_stream {
        // Never polled: no task waits on it, the last sender's drop wakes nobody.
        drop(rx);
        drop(held);
        let outcome = (&mut work).await;
        let response = finish_json(&state, outcome, &id, is_initialize, &principal, accepts);
        if is_initialize && let Some(cluster) = &state.cluster {
            let minted = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            share_client(&state, cluster, &principal, minted.as_deref()).await;
        }
        return response;
    }

    // A call still running after one keep-alive interval also switches to SSE, so that
    // keep-alive comments flow and idle-timeout proxies do not cut a long call.
    let first = tokio::select! {
        biased;
        Some(note) = rx.recv() => First::Note(note),
        outcome = &mut work => First::Done(outcome),
        _ = tokio::time::sleep(state.keep_alive) => First::Slow,
    };
    match first {
        First::Slow => {
            drop(held);
            let streaming = Streaming {
                rx,
                work: Some(work.into_task()),
                queue: VecDeque::new(),
                id,
            };
            sse_response(
                streaming.into_stream(),
                state.keep_alive,
                state.shutdown.forced(),
            )
        }
        First::Done(outcome) => {
            let mut queued: VecDeque<Body> = VecDeque::new();
            while let Ok(note) = rx.try_recv() {
                queued.push_back(Body::Json(note));
            }
            queued.extend(quiet_close(&mut rx, held).map(Body::Json));
            if queued.is_empty() {
                return finish_json(&state, outcome, &id, false, &principal, accepts);
            }
            let (_, answer) = final_answer(outcome, &id);
            queued.extend(answer);
            let streaming = Streaming {
                rx,
                work: None,
                queue: queued,
                id,
            };
            sse_response(
                streaming.into_stream(),
                state.keep_alive,
                state.shutdown.forced(),
            )
        }
        First::Note(note) => {
            drop(held);
            let streaming = Streaming {
                rx,
                work: Some(work.into_task()),
                queue: VecDeque::from([Body::Json(note)]),
                id,
            };
            sse_response(
                streaming.into_stream(),
                state.keep_alive,
                state.shutdown.forced(),
            )
        }
    }
}

/// Close the notification channel of a request whose work is over (its queue read) without
/// waking this task: the receiver's registered waker (this task's, from the wait) is replaced
/// by a no-op one before the last sender we know of (`held`) is dropped. A notification sent
/// meanwhile (by something the work left running) is returned, for the caller to queue.
fn quiet_close(
    rx: &mut mpsc::UnboundedReceiver<Value>,
    held: mpsc::UnboundedSender<Value>,
) -> Option<Value> {
    let mut quiet = std::task::Context::from_waker(std::task::Waker::noop());
    let late = match rx.poll_recv(&mut quiet) {
        std::task::Poll::Ready(note) => note,
        std::task::Poll::Pending => None,
    };
    drop(held);
    late
}

/// How the first wait on a request ended.
enum First {
    /// The router emitted a notification (or a server→client request): stream.
    Note(Value),
    /// The router finished without emitting anything.
    Done(Result<Handled, WorkFailed>),
    /// Still running after a keep-alive interval: stream.
    Slow,
}

fn finish_json(
    state: &TransportState,
    outcome: Result<Handled, WorkFailed>,
    id: &Value,
    is_initialize: bool,
    principal: &Principal,
    accepts: Accepts,
) -> Response {
    let (status, answer) = final_answer(outcome, id);
    let Some(body) = answer else {
        return StatusCode::ACCEPTED.into_response();
    };
    if !accepts.json && status == StatusCode::OK {
        // The client takes only SSE: one event with the response.
        let stream = futures::stream::iter([body.event()]);
        return sse_response(stream, state.keep_alive, state.shutdown.forced());
    }
    let succeeded = body.is_success();
    let mut response = body.into_response(status);
    if is_initialize && succeeded {
        let session = state.sessions.mint(&principal.name);
        // What the client declared at `initialize` was kept under the principal (no session
        // yet): keep it under the new session too, so tools know its capabilities (roots).
        if let Ok(minted) = state.sessions.verify(&session, &principal.name) {
            state.server.copy_client(
                &format!("principal:{}", principal.name),
                &format!("session:{}", session_key(principal, &minted.nonce)),
            );
        }
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
    }
    response
}

fn method_not_allowed() -> Response {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "error": "this endpoint takes POST only (no standalone SSE stream)" }),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// `GET /mcp`: 405 (no standalone server-to-client stream).
pub async fn get() -> Response {
    method_not_allowed()
}

/// `DELETE /mcp` with `Mcp-Session-Id`: end the session (204); later requests with its id get
/// 404. Without a (valid) id: 400 / 404.
pub async fn delete(
    State(state): State<Arc<TransportState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    let Some(presented) = header_str(&headers, &SESSION_HEADER) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "DELETE needs the Mcp-Session-Id header of the session to end" }),
        );
    };
    match state.sessions.verify(&presented, &principal.name) {
        Ok(session) => {
            let key = session_key(&principal, &session.nonce);
            if let Some(cluster) = &state.cluster {
                // Every replica must refuse the id from now on: without Redis that cannot be
                // promised, so the session is not ended and the client may retry.
                if let Err(e) =
                    shared_sessions::end(cluster, &session.nonce, session.remaining_life()).await
                {
                    return json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &json!({ "error": format!("the session could not be ended on every replica: {e}") }),
                    );
                }
                let _ = shared_sessions::forget_client(cluster, &key).await;
            }
            state.sessions.terminate(&session);
            state.server.end_session(&key);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("unknown session ({error})") }),
        ),
    }
}

/// `[cluster]`: refuse a session another replica ended, and learn what its client declared at
/// `initialize` when this replica has not seen it yet. While Redis does not answer, requests
/// get the error ([`unavailable`]); notifications and responses are taken on this replica's
/// word (the session's seal is valid): they need no answer, and an SDK treats a refused
/// `notifications/initialized` as a broken transport, so the call after it would never
/// show the outage's message.
async fn shared_session(
    state: &TransportState,
    cluster: &crate::cluster::Cluster,
    session: &super::session::SessionId,
    key: &str,
    message: &Value,
) -> Result<(), Response> {
    let ended = match shared_sessions::is_ended(cluster, &session.nonce).await {
        Ok(ended) => ended,
        Err(e) if !rpc::contains_request(message) => {
            tracing::warn!(error = %e, "a notification in a session taken without the shared ended-session check: Redis did not answer");
            false
        }
        Err(e) => return Err(unavailable(message, &e)),
    };
    if ended {
        return Err(json_response(
            StatusCode::NOT_FOUND,
            &rpc::error_body(
                rpc::id(message),
                rpc::INVALID_REQUEST,
                "unknown session (session was terminated); send initialize again",
                None,
            ),
        ));
    }
    let owner = format!("session:{key}");
    if state.server.client_of(&owner).is_none() {
        match shared_sessions::load_client(cluster, key).await {
            Ok(Some(client)) => state.server.remember_client(&owner, client),
            Ok(None) => {}
            // Not fatal: the client's capabilities stay unknown on this replica.
            Err(e) => tracing::warn!(error = %e, "session's client declaration not loaded"),
        }
    }
    Ok(())
}

/// `[cluster]`: the answer to `message` when the shared state it needs does not answer. Its
/// requests get a JSON-RPC error naming the cause under HTTP 200, which clients show as the
/// call's error (an SDK treats a 503 as a broken transport and hides the text); a message
/// with no request to answer gets 503 with the same text.
fn unavailable(message: &Value, e: &crate::cluster::ClusterError) -> Response {
    let text = e.to_string();
    let answer = |m: &Value| {
        rpc::contains_request(m)
            .then(|| rpc::error_body(rpc::id(m), rpc::INTERNAL_ERROR, &text, None))
    };
    let answers = match message {
        Value::Array(items) => {
            let answers: Vec<Value> = items.iter().filter_map(answer).collect();
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        one => answer(one),
    };
    match answers {
        Some(body) => json_response(StatusCode::OK, &body),
        None => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &rpc::error_body(Value::Null, rpc::INTERNAL_ERROR, &text, None),
        ),
    }
}

/// `[cluster]`: after a successful `initialize`, share what the client declared under the new
/// session, so every replica knows its capabilities.
async fn share_client(
    state: &TransportState,
    cluster: &crate::cluster::Cluster,
    principal: &Principal,
    minted: Option<&str>,
) {
    let Some(minted) = minted.and_then(|id| state.sessions.verify(id, &principal.name).ok()) else {
        return;
    };
    let key = session_key(principal, &minted.nonce);
    let Some(client) = state.server.client_of(&format!("session:{key}")) else {
        return;
    };
    if let Err(e) =
        shared_sessions::store_client(cluster, &key, &client, minted.remaining_life()).await
    {
        tracing::warn!(error = %e, "the client's initialize declaration was not shared with the other replicas");
    }
}

/// The router's session key for a Streamable HTTP session.
fn session_key(principal: &Principal, nonce: &str) -> String {
    format!("{}:{nonce}", principal.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocating implementation `accepts` replaced.
    fn reference(accept: &str) -> (bool, bool) {
        let (mut json, mut sse) = (false, false);
        for item in accept.split(',') {
            let mime = item
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match mime.as_str() {
                "*/*" => (json, sse) = (true, true),
                "application/json" | "application/*" => json = true,
                "text/event-stream" | "text/*" => sse = true,
                _ => {}
            }
        }
        (json, sse)
    }

    #[test]
    fn accepts_reads_the_header_as_before() {
        for accept in [
            "",
            ",",
            "application/json, text/event-stream",
            "Application/JSON;q=0.9,TEXT/Event-Stream",
            "\t*/* ",
            "*/*;q=0",
            "application/*",
            "text/*;charset=utf-8",
            "text/html, application/xml",
            "application/jsonx, text/event-streams",
            " application/json ;q=1 , ",
            ";application/json",
            "application / json",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            let got = accepts(&headers);
            assert_eq!((got.json, got.sse), reference(accept), "{accept:?}");
        }
        let got = accepts(&HeaderMap::new());
        assert_eq!((got.json, got.sse), (true, false), "no Accept header");
    }
}

#[cfg(test)]
mod quiet_close_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    use super::*;

    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A receiver polled (empty) by a task whose wakes are counted.
    fn waited_on() -> (
        mpsc::UnboundedReceiver<Value>,
        mpsc::UnboundedSender<Value>,
        Arc<Counting>,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let wakes = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        assert!(rx.poll_recv(&mut Context::from_waker(&waker)).is_pending());
        (rx, tx, wakes)
    }

    #[test]
    fn the_last_sender_dropped_wakes_the_waiting_task() {
        // What `quiet_close` avoids: the router's senders dropped at the end of its work wake
        // the request's own task.
        let (_rx, tx, wakes) = waited_on();
        drop(tx);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn quiet_close_drops_the_last_sender_without_waking_the_task() {
        let (mut rx, tx, wakes) = waited_on();
        let held = tx.clone();
        drop(tx); // the router's sender: `held` is still there
        assert_eq!(quiet_close(&mut rx, held), None);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        assert!(rx.is_closed());
    }

    #[test]
    fn quiet_close_returns_a_late_notification() {
        let (mut rx, tx, wakes) = waited_on();
        let held = tx.clone();
        tx.send(json!({"late": 1})).unwrap();
        drop(tx);
        assert_eq!(quiet_close(&mut rx, held), Some(json!({"late": 1})));
        // The late send woke the task (as any notification does); closing did not.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    }
}
