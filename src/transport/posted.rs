//! A POSTed request's headers and body, taken out of the request instead of copied: axum's
//! `HeaderMap` extractor clones the whole map (its index and entry tables) and the request
//! then drops the original, once per POST. The body is read exactly as axum's `Bytes`
//! extractor reads it (the same body limit, the same rejections).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;

/// The headers and the body (or why it could not be read) of a POST.
pub struct Posted {
    pub headers: HeaderMap,
    pub body: Result<Bytes, BytesRejection>,
}

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Infallible> {
        let (mut parts, body) = request.into_parts();
        let headers = std::mem::take(&mut parts.headers);
        // `Bytes` reads only the body and the extensions (its limit): the headers are not
        // needed for it.
        let body = Bytes::from_request(Request::from_parts(parts, body), state).await;
        Ok(Posted { headers, body })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    fn request(body: &'static str) -> Request {
        Request::builder()
            .method("POST")
            .header("content-type", "application/json")
            .header("x-two", "a")
            .header("x-two", "b")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn the_headers_and_body_are_the_requests() {
        let Ok(posted) = Posted::from_request(request("{\"a\":1}"), &()).await;
        assert_eq!(posted.headers["content-type"], "application/json");
        let two: Vec<_> = posted.headers.get_all("x-two").iter().collect();
        assert_eq!(two, ["a", "b"]);
        assert_eq!(posted.body.unwrap(), Bytes::from_static(b"{\"a\":1}"));
    }

    #[tokio::test]
    async fn the_body_limit_still_applies() {
        let mut limited = request("0123456789");
        // What the `DefaultBodyLimit` layer puts in the extensions.
        let layer = DefaultBodyLimit::max(4);
        let service =
            tower::ServiceBuilder::new()
                .layer(layer)
                .service_fn(|req: Request| async move {
                    let Ok(posted) = Posted::from_request(req, &()).await;
                    Ok::<_, Infallible>(posted.body.map_or_else(
                        |rejection| rejection.into_response().status(),
                        |_| StatusCode::OK,
                    ))
                });
        limited.headers_mut().remove("x-two");
        let status = tower::ServiceExt::oneshot(service, limited).await.unwrap();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
