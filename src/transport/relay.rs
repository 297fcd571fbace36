//! The `/relay/{ticket}` endpoint through which session containers return results.
//!
//! `GET` hands out the bytes of a file-write ticket; `POST` accepts an exec result, a file's
//! bytes or a listing. The ticket in the path is the credential (mount these routes outside
//! bearer auth and outside the global body limit: each ticket carries its own size cap,
//! enforced while streaming, before the body is buffered). Unknown, used, expired or
//! wrong-method tickets all get the same 404.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::BytesMut;
use futures::StreamExt;

use crate::relay::{Relay, UploadError};

/// The relay routes, with their state applied.
pub fn routes(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/relay/{ticket}", get(download).post(upload))
        .with_state(relay)
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "unknown or expired relay ticket\n").into_response()
}

async fn download(State(relay): State<Arc<Relay>>, Path(ticket): Path<String>) -> Response {
    match relay.take_download(&ticket) {
        Some((binding, bytes)) => {
            tracing::debug!(kasm_id = %binding.kasm_id, principal = %binding.principal, bytes = bytes.len(), "relay download");
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        None => not_found(),
    }
}

async fn upload(
    State(relay): State<Arc<Relay>>,
    Path(ticket): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(sink) = relay.begin_upload(&ticket) else {
        return not_found();
    };
    let limit = sink.max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        sink.fail(UploadError::TooLarge { limit });
        return (StatusCode::PAYLOAD_TOO_LARGE, "relay upload too large\n").into_response();
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if buffer.len() + chunk.len() > limit {
                    sink.fail(UploadError::TooLarge { limit });
                    return (StatusCode::PAYLOAD_TOO_LARGE, "relay upload too large\n")
                        .into_response();
                }
                buffer.extend_from_slice(&chunk);
            }
            Err(e) => {
                sink.fail(UploadError::Broken(e.to_string()));
                return (StatusCode::BAD_REQUEST, "relay upload broke off\n").into_response();
            }
        }
    }
    tracing::debug!(kasm_id = %sink.binding.kasm_id, principal = %sink.binding.principal, bytes = buffer.len(), "relay upload");
    if sink.deliver(buffer.freeze()) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    fn post(id: &str, body: Body) -> Request<Body> {
        Request::post(format!("/relay/{id}")).body(body).unwrap()
    }

    #[tokio::test]
    async fn streamed_upload_over_the_cap_is_refused_without_buffering_it_all() {
        let relay = relay();
        let mut ticket = relay
            .expect_upload(binding(Purpose::ExecResult), 1000, Duration::from_secs(5))
            .unwrap();
        // A chunked body (no Content-Length) of 10 × 600 bytes: refused at the second chunk.
        let chunks = futures::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 600]))),
        );
        let response = routes(relay.clone())
            .oneshot(post(ticket.id(), Body::from_stream(chunks)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            ticket.received().await,
            Err(UploadError::TooLarge { limit: 1000 })
        );
    }

    #[tokio::test]
    async fn tickets_are_single_use_and_method_bound() {
        let relay = relay();
        let mut ticket = relay
            .expect_upload(binding(Purpose::ExecResult), 100, Duration::from_secs(5))
            .unwrap();
        let id = ticket.id().to_string();
        let app = routes(relay.clone());
        let get = Request::get(format!("/relay/{id}"))
            .body(Body::empty())
            .unwrap();
        let r = app.clone().oneshot(get).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "GET on an upload ticket");
        let r = app
            .clone()
            .oneshot(post(&id, Body::from("ok")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(ticket.received().await.unwrap(), Bytes::from_static(b"ok"));
        let r = app
            .clone()
            .oneshot(post(&id, Body::from("again")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "second use");
        let r = app.oneshot(post("nonsense", Body::empty())).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        let download = relay
            .offer_download(
                binding(Purpose::FileDownload),
                Bytes::from_static(b"bytes"),
                Duration::from_secs(5),
            )
            .unwrap();
        let id = download.url().rsplit('/').next().unwrap().to_string();
        let app = routes(relay);
        let get = || {
            Request::get(format!("/relay/{id}"))
                .body(Body::empty())
                .unwrap()
        };
        let r = app.clone().oneshot(get()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 100).await.unwrap();
        assert_eq!(&body[..], b"bytes");
        let r = app.oneshot(get()).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
