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

use crate::telemetry::{self, HttpSeriesTable};

/// The HTTP layer's recorder (a handle on the process's Prometheus recorder) and its kept
/// per-route response series.
#[derive(Debug)]
pub struct Metrics {
    requests: HttpSeriesTable,
}

impl Default for Metrics {
    fn default() -> Self {
        let _ = telemetry::handle();
        Metrics {
            requests: HttpSeriesTable::new(&ROUTES),
        }
    }
}

/// The route labels: the matched route patterns (a bounded set), `other` for any other
/// matched route, `unmatched` when no route matched.
const ROUTES: [&str; 9] = [
    "/mcp",
    "/sse",
    "/messages",
    "/metrics",
    "/healthz",
    "/readyz",
    "/relay/{ticket}",
    "other",
    "unmatched",
];

/// The position in [`ROUTES`] of a matched route pattern (`None`: no route matched).
fn route_index(route: Option<&str>) -> usize {
    match route {
        Some("/mcp") => 0,
        Some("/sse") => 1,
        Some("/messages") => 2,
        Some("/metrics") => 3,
        Some("/healthz") => 4,
        Some("/readyz") => 5,
        Some("/relay/{ticket}") => 6,
        Some(_) => 7,
        None => 8,
    }
}

impl Metrics {
    /// Count one HTTP response under the route at `route` of [`ROUTES`] ([`route_index`]).
    pub fn record_request(&self, route: usize, status: u16) {
        self.requests.record(route, status);
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
        let route = route_index(
            request
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str),
        );
        Tracked {
            future: self.inner.call(request),
            metrics: self.metrics.clone(),
            route,
        }
    }
}

pin_project! {
    /// The response future of [`Track`]: counts the response, under the route at `route`
    /// of [`ROUTES`], when it is ready.
    pub struct Tracked<F> {
        #[pin]
        future: F,
        metrics: Arc<Metrics>,
        route: usize,
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
        m.record_request(route_index(Some("/mcp")), 200);
        m.record_request(route_index(Some("/mcp")), 200);
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
