//! `/metrics` and the HTTP-level series, recorded through [`crate::telemetry`] (the
//! `metrics` facade and its Prometheus exporter: atomics, no lock or allocation per request):
//! HTTP responses by route and status, tool calls by tool and outcome.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::telemetry::{self, HTTP_REQUESTS};

/// The HTTP layer's recorder (a handle on the process's Prometheus recorder).
#[derive(Debug)]
pub struct Metrics(());

impl Default for Metrics {
    fn default() -> Self {
        let _ = telemetry::handle();
        Metrics(())
    }
}

/// The route label: the matched route pattern (a bounded set), `other` otherwise.
fn route_label(route: Option<&str>) -> &'static str {
    match route {
        Some("/mcp") => "/mcp",
        Some("/sse") => "/sse",
        Some("/messages") => "/messages",
        Some("/metrics") => "/metrics",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/relay/{ticket}") => "/relay/{ticket}",
        Some(_) => "other",
        None => "unmatched",
    }
}

impl Metrics {
    /// Count one HTTP response.
    pub fn record_request(&self, route: Option<&str>, status: u16) {
        metrics::counter!(
            HTTP_REQUESTS,
            "route" => route_label(route),
            "status" => telemetry::status_label(status)
        )
        .increment(1);
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut out = telemetry::render();
        // The reaper's counter lives in `usage` (below the telemetry facade's users).
        out.push_str(
            "# HELP kasm_mcp_sessions_reaped_total Sessions the lifetime reaper destroyed.\n",
        );
        out.push_str("# TYPE kasm_mcp_sessions_reaped_total counter\n");
        let _ = writeln!(
            out,
            "kasm_mcp_sessions_reaped_total {}",
            crate::usage::reaped_total()
        );
        out
    }
}

/// Layer: count every response under its matched route (`unmatched` for 404s). It sits
/// inside the router's per-route stack, where [`MatchedPath`] is known.
#[derive(Debug, Clone)]
pub struct TrackLayer {
    metrics: Arc<Metrics>,
}

impl TrackLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        TrackLayer { metrics }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Track {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`TrackLayer`].
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| route_label(Some(p.as_str())));
        Tracked {
            future: self.inner.call(request),
            metrics: self.metrics.clone(),
            route,
        }
    }
}

pin_project! {
    /// The response future of [`Track`]: counts the response when it is ready.
    pub struct Tracked<F> {
        #[pin]
        future: F,
        metrics: Arc<Metrics>,
        route: Option<&'static str>,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        if let Ok(response) = &result {
            this.metrics
                .record_request(*this.route, response.status().as_u16());
        }
        Poll::Ready(result)
    }
}

/// `GET /metrics`.
pub async fn serve(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.record_request(Some("/mcp"), 200);
        m.record_request(Some("/mcp"), 200);
        // Tool calls are counted through `telemetry::ToolSeriesTable` (tested there).
        let text = m.render();
        assert!(
            text.contains("kasm_mcp_http_requests_total{route=\"/mcp\",status=\"200\"}"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_layer_counts_each_response_under_its_route_and_status() {
        use axum::body::Body;
        use tower::ServiceExt;
        let series = "kasm_mcp_http_requests_total{route=\"unmatched\",status=\"4xx\"}";
        let count = |text: &str| -> u64 {
            text.lines()
                .find_map(|line| line.strip_prefix(series))
                .and_then(|rest| rest.trim().parse().ok())
                .unwrap_or(0)
        };
        let metrics = Arc::new(Metrics::default());
        let before = count(&metrics.render());
        let service =
            TrackLayer::new(metrics.clone()).layer(tower::service_fn(|_: Request| async {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = axum::http::StatusCode::IM_A_TEAPOT;
                Ok::<_, std::convert::Infallible>(response)
            }));
        let response = service.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), 418);
        assert_eq!(count(&metrics.render()), before + 1);
    }
}
