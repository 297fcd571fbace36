//! The 2024-11-05 HTTP+SSE transport: `GET /sse` opens a stream whose first event, `endpoint`,
//! names `/messages?sessionId=<id>`; the client POSTs every message there (202), and every
//! response and notification comes back on the stream as a `message` event. Sessions live in
//! memory, are bound to the principal that opened them (another principal gets 404), and are
//! removed — with their in-flight work cancelled — when the stream closes. Open streams are
//! capped server-wide (503) and per principal (429), so one token cannot lock the others out;
//! with `[cluster]` both caps count the streams of every replica (`legacy_sessions.rs`).
//!
//! Each stream has a bounded queue (`legacy_sse.queue_messages`): a POSTed request reserves
//! the slot of its answer up front, so a client that does not read its stream gets 429 on
//! its next request instead of making the server buffer without end; a notification that
//! finds the queue full ends the stream (the client reconnects and starts over).
//!
//! With `[cluster]` a POST may reach a replica that does not hold the stream: it is forwarded
//! through Redis (`legacy_routing.rs`) and admitted on the stream's replica, which answers a
//! refused request (rate limit, full queue) on the stream itself, since the poster already
//! got its 202.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::accounting;
use super::body::Body;
use super::legacy_routing::{self, Forwarded, NotRouted};
use super::legacy_sessions::{LegacySession, Refused};
use super::origin::{Peer, origin};
use super::posted::Posted;
use super::rpc;
use super::sse::sse_response;
use super::state::TransportState;
use crate::http::error::json_error;
use crate::mcp::{Handled, Origin, RequestMeta};
use crate::policy::Principal;

pub use super::legacy_sessions::{MAX_LEGACY_SESSIONS, MAX_LEGACY_SESSIONS_PER_PRINCIPAL};

/// Removes the session when its stream is dropped (client gone or server stopping).
struct SessionGuard {
    state: Arc<TransportState>,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.state.legacy.remove(&self.id);
        self.state.server.end_session(&session_key(&self.id));
        tracing::debug!("legacy SSE session closed");
    }
}

/// The router's session key for a legacy connection.
fn session_key(id: &str) -> String {
    format!("sse:{id}")
}

/// `GET /sse`.
pub async fn connect(
    State(state): State<Arc<TransportState>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    if state.shutdown.stopping().is_cancelled() {
        return super::draining::shutting_down();
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (outbound, inbound) = mpsc::channel(state.legacy.queue_messages);
    let cancel = CancellationToken::new();
    let session = LegacySession {
        principal: principal.clone(),
        outbound,
        cancel: cancel.clone(),
        leases: Vec::new(),
    };
    if let Err(refused) = state.legacy.open(id.clone(), session).await {
        return refusal(refused, &principal);
    }
    if let Some(cluster) = &state.cluster {
        legacy_routing::keep_route(
            cluster.clone(),
            id.clone(),
            principal.name.clone(),
            cancel.clone(),
        );
        accept_forwarded(&state, cluster, &id, &cancel);
    }
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let guard = SessionGuard {
        state: state.clone(),
        id,
    };
    // The stream also ends when the session is cancelled (its queue overflowed).
    let messages = ReceiverStream::new(inbound)
        .map(move |message| {
            let _keep_session_while_streaming = &guard;
            message.event()
        })
        .take_until(cancel.cancelled_owned());
    let stream = futures::stream::once(async move { endpoint }).chain(messages);
    sse_response(stream, state.keep_alive, state.shutdown.idle_streams_end())
}

/// The answer to a `GET /sse` the caps refused.
fn refusal(refused: Refused, principal: &Principal) -> Response {
    match refused {
        Refused::Full { everywhere: false } => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open SSE connections (legacy_sse.max_streams); retry later or use /mcp",
        ),
        Refused::Full { everywhere: true } => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open SSE connections over every replica (legacy_sse.max_streams); retry later or use /mcp",
        ),
        Refused::PrincipalFull {
            held: Some(own),
            max,
        } => json_error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "principal {:?} already has {own} open SSE connections (the limit is {max}, legacy_sse.max_streams_per_principal); close one, or use /mcp",
                principal.name
            ),
        ),
        Refused::PrincipalFull { held: None, max } => json_error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "principal {:?} already has {max} open SSE connections over every replica (the limit is {max}, legacy_sse.max_streams_per_principal); close one, or use /mcp",
                principal.name
            ),
        ),
        Refused::Unavailable(e) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the SSE connection caps cannot be checked: {e}"),
        ),
    }
}

fn session_id_from(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "sessionId" || k == "session_id")
        .map(|(_, v)| v.into_owned())
}

/// `POST /messages?sessionId=<id>`.
pub async fn post_message(
    State(state): State<Arc<TransportState>>,
    Extension(principal): Extension<Principal>,
    peer: Peer,
    RawQuery(query): RawQuery,
    Posted { headers, body }: Posted,
) -> Response {
    let Some(session_id) = session_id_from(query.as_deref()) else {
        return json_error(StatusCode::BAD_REQUEST, "missing sessionId query parameter");
    };
    let local = {
        let sessions = state.legacy.lock();
        match sessions.get(&session_id) {
            Some(s) if s.principal == principal => Some((s.outbound.clone(), s.cancel.clone())),
            // Unknown, closed, or another principal's session: indistinguishable on purpose.
            _ => None,
        }
    };
    let Some((outbound, cancel)) = local else {
        return match &state.cluster {
            Some(cluster) => {
                forward_to_holder(
                    &state,
                    cluster,
                    &session_id,
                    &principal,
                    &headers,
                    &peer,
                    body,
                )
                .await
            }
            None => unknown_session(),
        };
    };
    let message = match rpc::parse_body(body, state.max_body_bytes) {
        Ok(message) => message,
        Err(response) => return *response,
    };
    dispatch(
        &state,
        &session_id,
        principal,
        message,
        origin(&headers, &peer),
        outbound,
        cancel,
    )
    .await
}

fn unknown_session() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "unknown session: open a new SSE connection at /sse",
    )
}

/// `[cluster]`: hand a message for a stream this replica does not hold to the one that does.
async fn forward_to_holder(
    state: &TransportState,
    cluster: &crate::cluster::Cluster,
    session_id: &str,
    principal: &Principal,
    headers: &HeaderMap,
    peer: &Peer,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if state.shutdown.stopping().is_cancelled() {
        return super::draining::shutting_down();
    }
    let message = match rpc::parse_body(body, state.max_body_bytes) {
        Ok(message) => message,
        Err(response) => return *response,
    };
    let origin = origin(headers, peer);
    let forwarded = Forwarded {
        message,
        request_id: origin.request_id,
        client_ip: origin.client_ip,
    };
    match legacy_routing::forward(cluster, session_id, &principal.name, &forwarded).await {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(NotRouted::Gone) => unknown_session(),
        Err(NotRouted::Unavailable(e)) => {
            tracing::warn!(error = %e, "legacy SSE: message not forwarded");
            json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

/// `[cluster]`: run the messages other replicas forward to stream `id` until it closes.
fn accept_forwarded(
    state: &Arc<TransportState>,
    cluster: &crate::cluster::Cluster,
    id: &str,
    closed: &CancellationToken,
) {
    let mut listener = cluster
        .inbox()
        .listen(&legacy_routing::topic(id), state.legacy.queue_messages);
    let (state, id, closed) = (state.clone(), id.to_owned(), closed.clone());
    tokio::spawn(async move {
        loop {
            let body = tokio::select! {
                _ = closed.cancelled() => break,
                body = listener.recv() => match body {
                    Some(body) => body,
                    None => break,
                },
            };
            let Some(forwarded) = legacy_routing::decode(&body) else {
                continue;
            };
            let local = {
                let sessions = state.legacy.lock();
                sessions
                    .get(&id)
                    .map(|s| (s.principal.clone(), s.outbound.clone(), s.cancel.clone()))
            };
            let Some((principal, outbound, cancel)) = local else {
                break;
            };
            let request_id =
                rpc::contains_request(&forwarded.message).then(|| rpc::id(&forwarded.message));
            let origin = forwarded.origin();
            let response = dispatch(
                &state,
                &id,
                principal,
                forwarded.message,
                origin,
                outbound.clone(),
                cancel.clone(),
            )
            .await;
            if response.status() != StatusCode::ACCEPTED {
                // The poster got 202 from another replica: answer the refusal on the stream.
                let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
                    .await
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if let Some(request_id) = request_id {
                    let error = rpc::error_body(request_id, -32000, &text, None);
                    if !forward_note(&outbound, error) {
                        cancel.cancel();
                    }
                }
            }
        }
    });
}

/// Admit `message` for the local stream `session_id` and run it; its answer and
/// notifications go to the stream. 202, or the refusal.
async fn dispatch(
    state: &Arc<TransportState>,
    session_id: &str,
    principal: Principal,
    message: Value,
    origin: Origin,
    outbound: mpsc::Sender<Body>,
    cancel: CancellationToken,
) -> Response {
    // A request's answer gets its queue slot now, or the request is refused: a client that
    // does not read its stream cannot make the server hold more than the queue.
    let answer_slot = if rpc::contains_request(&message) {
        match outbound.clone().try_reserve_owned() {
            Ok(permit) => Some(permit),
            Err(TrySendError::Full(_)) => {
                return json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "this session's SSE stream has {} messages waiting to be read (legacy_sse.queue_messages); read the stream before sending more",
                        state.legacy.queue_messages
                    ),
                );
            }
            Err(TrySendError::Closed(_)) => return unknown_session(),
        }
    } else {
        None
    };
    let pending = match accounting::admit(state, &principal, &message).await {
        Ok(pending) => pending,
        Err(response) => return *response,
    };
    let (notifications, mut notes) = mpsc::unbounded_channel();
    let meta = RequestMeta {
        principal,
        notifications,
        session_key: Some(session_key(session_id)),
        protocol_version_header: None,
        mcp_method_header: None,
        mcp_name_header: None,
        origin,
    };
    let task_state = state.clone();
    // Tracked: graceful shutdown waits for it, and the SSE stream stays open until its answer
    // is queued.
    state.shutdown.spawn(async move {
        let work = task_state.server.handle(message, meta);
        tokio::pin!(work);
        let handled = loop {
            tokio::select! {
                _ = cancel.cancelled() => break None,
                Some(note) = notes.recv() => {
                    if !forward_note(&outbound, note) {
                        tracing::info!("legacy SSE client is not reading its stream; ending the stream");
                        cancel.cancel();
                    }
                }
                handled = &mut work => break Some(handled),
            }
        };
        pending.settle(handled.as_ref());
        // Notifications emitted just before the answer go first.
        while let Ok(note) = notes.try_recv() {
            if !forward_note(&outbound, note) {
                cancel.cancel();
            }
        }
        let answer = match handled {
            Some(Handled::Response(body)) | Some(Handled::HttpError { body, .. }) => {
                Some(Body::Json(body))
            }
            // Written to the stream as it is, as on /mcp.
            Some(Handled::RawResponse(raw)) => Some(Body::Raw(raw)),
            Some(Handled::Accepted) | None => None,
        };
        if let Some(body) = answer {
            match answer_slot {
                Some(slot) => {
                    slot.send(body);
                }
                None => {
                    let _ = outbound.try_send(body);
                }
            }
        }
        // A task this request started keeps the request's channel: its later messages
        // (progress, `notifications/tasks/status`) follow on the stream until the task ends
        // or the connection closes. Untracked: shutdown does not wait for background tasks.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    note = notes.recv() => {
                        let Some(note) = note else { break };
                        if !forward_note(&outbound, note) {
                            break;
                        }
                    }
                }
            }
        });
    });
    (StatusCode::ACCEPTED, "Accepted").into_response()
}

/// Queue a message for the stream; false when the queue is full (the reader is not keeping up).
fn forward_note(outbound: &mpsc::Sender<Body>, message: Value) -> bool {
    !matches!(
        outbound.try_send(Body::Json(message)),
        Err(TrySendError::Full(_))
    )
}
