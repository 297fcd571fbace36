//! The `/relay/{ticket}` endpoint through which session containers return results.
//!
//! `GET` hands out the bytes of a file-write ticket; `POST` accepts an exec result, a file's
//! bytes or a listing. The ticket in the path is the credential (mount these routes outside
//! bearer auth and outside the global body limit: each ticket carries its own size cap,
//! enforced while streaming, before the body is buffered). Unknown, used, expired or
//! wrong-method tickets all get the same 404. A live ticket asked for without its key (the
//! `X-Relay-Key` header) gets 403 and stays usable: knowing a ticket's URL is not enough to
//! forge a result or take a write's bytes.
//!
//! The relay has its own request limits (`[relay_limits]`) instead of the per-IP limit of the
//! MCP endpoints: session containers that share an egress address would share that budget,
//! so one session's flood could make another principal's result upload fail. A live ticket
//! is limited per ticket, so nothing but its own holder can use up its attempts (with
//! `[cluster]` that budget is counted in Redis, so guesses spread over N replicas get the
//! configured figure, not N times it; while Redis does not answer, each replica counts
//! locally, never unlimited). A request
//! naming an unknown ticket is limited per client address and always answered with
//! `Connection: close` (its body unread): each guess costs the sender a new connection, the
//! server a table lookup.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::BytesMut;
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::cluster::{GlobalLimit, Verdict};
use crate::config::RelayLimitsConfig;
use crate::http::drain::close_after;
use crate::http::rate_limit::too_many_requests;
use crate::relay::{KEY_HEADER, Purpose, Relay, TicketRefused, UploadError};

/// The relay and its request limits.
pub struct RelayState {
    relay: Arc<Relay>,
    unknown_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_ticket: DefaultKeyedRateLimiter<String>,
    /// `[cluster]`: the per-ticket budget counted over every replica.
    per_ticket_shared: Option<GlobalLimit>,
    requests: AtomicU64,
    clock: DefaultClock,
}

impl RelayState {
    pub fn new(relay: Arc<Relay>, limits: &RelayLimitsConfig) -> Self {
        let quota = |rate: u32, burst: u32, per_minute: bool| {
            let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            let quota = if per_minute {
                Quota::per_minute(rate)
            } else {
                Quota::per_second(rate)
            };
            quota.allow_burst(burst)
        };
        let per_ticket_shared = relay.cluster().map(|cluster| {
            let rate = limits.per_ticket_per_minute.max(1);
            let burst = match limits.per_ticket_burst {
                0 => rate,
                burst => burst,
            };
            GlobalLimit::new(
                cluster.redis(),
                "relay-ticket",
                std::time::Duration::from_secs(60) / rate,
                burst,
            )
        });
        RelayState {
            per_ticket_shared,
            relay,
            unknown_per_ip: RateLimiter::keyed(quota(
                limits.unknown_ticket_per_second,
                limits.unknown_ticket_burst,
                false,
            )),
            per_ticket: RateLimiter::keyed(quota(
                limits.per_ticket_per_minute,
                limits.per_ticket_burst,
                true,
            )),
            requests: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` when `ticket` may be tried (`true`: it is a stream ticket, here or, with
    /// `[cluster]`, on another replica); else the answer: a live ticket over its own budget
    /// gets 429; an unknown one gets 404, or 429 when its sender is over the unknown-ticket
    /// budget.
    async fn refusal(&self, ticket: &str, ip: Option<IpAddr>) -> Result<bool, Response> {
        // Forget limiter keys that are back to full now and then (bounds memory).
        if self.requests.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.unknown_per_ip.retain_recent();
            self.per_ticket.retain_recent();
        }
        if self.relay.is_stream(ticket) {
            // Paced by the wrapper (one request per interval), checked by its key.
            return Ok(true);
        }
        let live = match self.relay.live_purpose(ticket).await {
            Ok(live) => live,
            Err(why) => return Err(refused(why)),
        };
        if live == Some(Purpose::ExecStream) {
            return Ok(true);
        }
        if live.is_some() {
            return match self.ticket_attempt(ticket).await {
                Ok(()) => Ok(false),
                // Counted on the ticket, so the waiting tool can say its result was rate
                // limited rather than never sent.
                Err(wait) => {
                    self.relay.note_rate_limited(ticket).await;
                    Err(too_many_requests(wait, "attempts for this relay ticket"))
                }
            };
        }
        let mut response = match ip.map(|ip| self.unknown_per_ip.check_key(&ip)) {
            Some(Err(not_until)) => too_many_requests(
                not_until.wait_time_from(self.clock.now()),
                "unknown relay tickets per client address",
            ),
            _ => not_found(),
        };
        close_after(&mut response);
        Err(response)
    }
}

impl RelayState {
    /// One attempt on live `ticket`, over every replica with `[cluster]`; `Err(wait)` when
    /// its budget is spent.
    async fn ticket_attempt(&self, ticket: &str) -> Result<(), std::time::Duration> {
        if let Some(shared) = &self.per_ticket_shared {
            match shared.check(ticket, 1).await {
                Ok(Verdict::Allowed) => return Ok(()),
                Ok(Verdict::Wait(wait)) => return Err(wait),
                Err(e) => {
                    tracing::warn!(error = %e, "relay ticket attempts counted locally: Redis did not answer");
                }
            }
        }
        self.per_ticket
            .check_key(&ticket.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The relay routes with the default `[relay_limits]`.
pub fn routes(relay: Arc<Relay>) -> Router {
    routes_with_limits(relay, &RelayLimitsConfig::default())
}

/// The relay routes, with their state and limits applied.
pub fn routes_with_limits(relay: Arc<Relay>, limits: &RelayLimitsConfig) -> Router {
    Router::new()
        .route("/relay/{ticket}", get(download).post(upload))
        .with_state(Arc::new(RelayState::new(relay, limits)))
}

fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "unknown or expired relay ticket\n").into_response();
    close_after(&mut response);
    response
}

fn refused(why: TicketRefused) -> Response {
    match why {
        TicketRefused::Unknown => not_found(),
        // [cluster]: Redis did not answer. The wrapper retries until its deadline.
        TicketRefused::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the relay's shared ticket table is unavailable; retry\n",
        )
            .into_response(),
        TicketRefused::WrongKey => {
            tracing::warn!("relay request with a missing or wrong key refused");
            (
                StatusCode::FORBIDDEN,
                "missing or wrong relay key for this ticket\n",
            )
                .into_response()
        }
    }
}

fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(KEY_HEADER).and_then(|v| v.to_str().ok())
}

async fn download(
    State(state): State<Arc<RelayState>>,
    Path(ticket): Path<String>,
    request: Request,
) -> Response {
    if let Err(refusal) = state.refusal(&ticket, client_ip(&request)).await {
        return refusal;
    }
    let key = presented_key(request.headers()).map(str::to_owned);
    drop(request);
    match state.relay.take_download(&ticket, key.as_deref()).await {
        Ok((binding, bytes)) => {
            tracing::debug!(kasm_id = %binding.kasm_id, principal = %binding.principal, bytes = bytes.len(), "relay download");
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Err(why) => refused(why),
    }
}

async fn upload(
    State(state): State<Arc<RelayState>>,
    Path(ticket): Path<String>,
    request: Request,
) -> Response {
    match state.refusal(&ticket, client_ip(&request)).await {
        Err(refusal) => return refusal,
        Ok(true) => return chunk(&state, &ticket, request).await,
        Ok(false) => {}
    }
    let key = presented_key(request.headers()).map(str::to_owned);
    let sink = match state.relay.begin_upload(&ticket, key.as_deref()).await {
        Ok(sink) => sink,
        Err(why) => return refused(why),
    };
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let limit = sink.max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        sink.fail(UploadError::TooLarge { limit }).await;
        let mut response =
            (StatusCode::PAYLOAD_TOO_LARGE, "relay upload too large\n").into_response();
        close_after(&mut response);
        return response;
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if buffer.len() + chunk.len() > limit {
                    sink.fail(UploadError::TooLarge { limit }).await;
                    return (StatusCode::PAYLOAD_TOO_LARGE, "relay upload too large\n")
                        .into_response();
                }
                buffer.extend_from_slice(&chunk);
            }
            Err(e) => {
                sink.fail(UploadError::Broken(e.to_string())).await;
                return (StatusCode::BAD_REQUEST, "relay upload broke off\n").into_response();
            }
        }
    }
    tracing::debug!(kasm_id = %sink.binding.kasm_id, principal = %sink.binding.principal, bytes = buffer.len(), "relay upload");
    match sink.deliver(buffer.freeze()).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(),
        Err(why) => refused(why),
    }
}

/// One output chunk POSTed to a stream ticket: read it (within the ticket's cap) and hand it
/// to the job's collector. The ticket stays live for the next chunk.
async fn chunk(state: &RelayState, ticket: &str, request: Request) -> Response {
    let sink = match state
        .relay
        .begin_chunk(ticket, presented_key(request.headers()))
        .await
    {
        Ok(sink) => sink,
        Err(why) => return refused(why),
    };
    let limit = sink.max_bytes;
    let mut buffer = BytesMut::new();
    let mut stream = request.into_body().into_data_stream();
    while let Some(part) = stream.next().await {
        match part {
            Ok(part) if buffer.len().saturating_add(part.len()) <= limit => {
                buffer.extend_from_slice(&part);
            }
            Ok(_) => {
                let mut response =
                    (StatusCode::PAYLOAD_TOO_LARGE, "relay chunk too large\n").into_response();
                close_after(&mut response);
                return response;
            }
            Err(_) => return (StatusCode::BAD_REQUEST, "relay chunk broke off\n").into_response(),
        }
    }
    match sink.deliver(buffer.freeze()).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(),
        Err(why) => refused(why),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use bytes::Bytes;
    use tower::ServiceExt;

    use super::*;
    use crate::relay::{Purpose, RelayOptions, TicketBinding};

    fn relay() -> Arc<Relay> {
        Arc::new(Relay::new(RelayOptions {
            base_url: Some("http://127.0.0.1:1".into()),
            ..RelayOptions::default()
        }))
    }

    fn binding(purpose: Purpose) -> TicketBinding {
        TicketBinding {
            principal: "p".into(),
            kasm_id: "k".into(),
            purpose,
        }
    }

    fn post(id: &str, key: &str, body: Body) -> Request<Body> {
        Request::post(format!("/relay/{id}"))
            .header(KEY_HEADER, key)
            .body(body)
            .unwrap()
    }

    #[tokio::test]
    async fn streamed_upload_over_the_cap_is_refused_without_buffering_it_all() {
        let relay = relay();
        let mut ticket = relay
            .expect_upload(binding(Purpose::ExecResult), 1000, Duration::from_secs(5))
            .await
            .unwrap();
        // A chunked body (no Content-Length) of 10 × 600 bytes: refused at the second chunk.
        let chunks = futures::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 600]))),
        );
        let response = routes(relay.clone())
            .oneshot(post(ticket.id(), ticket.key(), Body::from_stream(chunks)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            ticket.received().await,
            Err(UploadError::TooLarge { limit: 1000 })
        );
    }

    #[tokio::test]
    async fn unknown_tickets_are_limited_per_address_and_never_block_a_live_ticket() {
        let relay = relay();
        let mut ticket = relay
            .expect_upload(binding(Purpose::ExecResult), 100, Duration::from_secs(5))
            .await
            .unwrap();
        let limits = RelayLimitsConfig {
            unknown_ticket_per_second: 1,
            unknown_ticket_burst: 3,
            ..RelayLimitsConfig::default()
        };
        let app = routes_with_limits(relay.clone(), &limits);
        let key = ticket.key().to_string();
        let from = |id: &str, ip: [u8; 4]| {
            let mut request = post(id, &key, Body::from("x"));
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ip, 4000))));
            request
        };
        let mut statuses = Vec::new();
        for i in 0..10 {
            let r = app
                .clone()
                .oneshot(from(&format!("guess{i}"), [10, 0, 0, 2]))
                .await
                .unwrap();
            assert_eq!(r.headers()[header::CONNECTION], "close");
            statuses.push(r.status().as_u16());
        }
        assert_eq!(&statuses[..3], &[404, 404, 404]);
        assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
        // The same address still delivers a live ticket's upload.
        let r = app
            .clone()
            .oneshot(from(ticket.id(), [10, 0, 0, 2]))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(ticket.received().await.unwrap(), Bytes::from_static(b"x"));
        // Another address has its own budget.
        let r = app.oneshot(from("guess", [10, 0, 0, 3])).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_rate_limited_upload_is_counted_on_its_ticket() {
        let relay = relay();
        let ticket = relay
            .expect_upload(binding(Purpose::ExecResult), 100, Duration::from_secs(5))
            .await
            .unwrap();
        let limits = RelayLimitsConfig {
            per_ticket_per_minute: 1,
            per_ticket_burst: 1,
            ..RelayLimitsConfig::default()
        };
        let app = routes_with_limits(relay.clone(), &limits);
        let r = app
            .clone()
            .oneshot(post(ticket.id(), "wrong", Body::from("x")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = app
            .oneshot(post(ticket.id(), ticket.key(), Body::from("x")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(ticket.refusals().await.rate_limited, 1);
        assert_eq!(ticket.refusals().await.wrong_key, 1);
    }

    #[tokio::test]
    async fn tickets_are_single_use_and_method_bound() {
        let relay = relay();
        let mut ticket = relay
            .expect_upload(binding(Purpose::ExecResult), 100, Duration::from_secs(5))
            .await
            .unwrap();
        let id = ticket.id().to_string();
        let key = ticket.key().to_string();
        let app = routes(relay.clone());
        let get = Request::get(format!("/relay/{id}"))
            .header(KEY_HEADER, &key)
            .body(Body::empty())
            .unwrap();
        let r = app.clone().oneshot(get).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "GET on an upload ticket");
        // The URL alone (a stolen ticket) is refused and does not use the ticket up.
        for forged_key in ["", "forged"] {
            let r = app
                .clone()
                .oneshot(post(
                    &id,
                    forged_key,
                    Body::from("EXEC 0 0 1 7 0 0\nFORGED\n"),
                ))
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        }
        let no_header = Request::post(format!("/relay/{id}"))
            .body(Body::from("x"))
            .unwrap();
        let r = app.clone().oneshot(no_header).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(ticket.refusals().await.wrong_key, 3);
        let r = app
            .clone()
            .oneshot(post(&id, &key, Body::from("ok")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(ticket.received().await.unwrap(), Bytes::from_static(b"ok"));
        let r = app
            .clone()
            .oneshot(post(&id, &key, Body::from("again")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "second use");
        let r = app
            .oneshot(post("nonsense", &key, Body::empty()))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        let download = relay
            .offer_download(
                binding(Purpose::FileDownload),
                Bytes::from_static(b"bytes"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let id = download.url().rsplit('/').next().unwrap().to_string();
        let app = routes(relay);
        let get = |key: &str| {
            Request::get(format!("/relay/{id}"))
                .header(KEY_HEADER, key)
                .body(Body::empty())
                .unwrap()
        };
        let r = app.clone().oneshot(get("stolen-url-only")).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "the bytes need the key");
        let r = app.clone().oneshot(get(download.key())).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 100).await.unwrap();
        assert_eq!(&body[..], b"bytes");
        let r = app.oneshot(get(download.key())).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
