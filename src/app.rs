//! The assembled HTTP server: binds the listener, stacks the layers around the transports and
//! runs until stopped. Used by `serve`, `demo` and the integration tests alike.
//!
//! Every request passes, outermost first, the **edge** layers: leftover-body drain
//! ([`crate::http::drain`]) → drop an unacceptable client request id → set a request id →
//! copy it onto the response → trace span and response line ([`crate::http::trace`]) →
//! metrics ([`crate::http::metrics`]) → Host/Origin guard ([`crate::http::host_origin`]).
//! Below the edge, by route group:
//!
//! | routes | layers below the edge, outermost first |
//! |---|---|
//! | `/mcp`, `/sse`, `/messages` | per-IP rate limit → `DefaultBodyLimit` → body limit (413 on a declared length) → bearer auth → OAuth step-up (passes everything on without `[oauth]`) → transport |
//! | `/metrics` | per-IP rate limit → `DefaultBodyLimit` → body limit → handler (no auth) |
//! | OAuth protected-resource metadata (only with `[oauth]`) | per-IP rate limit → handler |
//! | `extra_routes` (the relay: its URL ticket is the credential; it caps each upload and rate-limits itself, `[relay_limits]`) | their own layers only |
//! | `/healthz`, `/readyz` (never starved by the rate limit) | handler |
//! | anything else (404) | handler |
//!
//! So the Host/Origin guard answers before the rate limit, the per-IP limit before the body
//! limit, the body limit before authentication. Each group gets its whole stack in one
//! `Router::layer` call (axum applies layers per route and boxes each route once per call;
//! the routing has to come first, because trace and metrics name the matched route). The
//! checks (Host/Origin, per-IP limit, body limit, auth, step-up) are deciders run by one
//! generic layer ([`crate::http::refuse`]) that decides in place and returns the inner future
//! as it is. Connections are accepted by [`crate::http::serve`] under `[connections]`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::task::JoinHandle;
use tower::ServiceBuilder;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::http::auth::Authenticator;
use crate::http::body_limit::BodyLimit;
use crate::http::conn_limits::raise_fd_limit;
use crate::http::drain::{DrainLayer, DrainLimits};
use crate::http::error::json_error;
use crate::http::health::{self, Readiness};
use crate::http::host_origin::HostOriginGuard;
use crate::http::metrics::{self, Metrics, TrackLayer};
use crate::http::rate_limit::{PerIp, RateLimits};
use crate::http::refuse::RefuseLayer;
use crate::http::request_id::{self, DropUnacceptableLayer};
use crate::http::serve::{self, ServeLimits};
use crate::http::step_up::StepUp;
use crate::http::trace;
use crate::kasm::KasmApi;
use crate::mcp::McpServer;
use crate::oauth::OAuthVerifier;
use crate::policy::Role;
use crate::shutdown::Shutdown;
use crate::transport::legacy_sessions::LegacySessions;
use crate::transport::session::SessionSealer;
use crate::transport::{TransportState, legacy_sse, streamable};

/// After the grace period has forced every stream to end, how long connections get to close
/// before the server stops waiting for them.
const CLOSE_AFTER_FORCE: Duration = Duration::from_secs(1);

/// A bound, not yet running server.
pub struct App {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    router: Router,
    shutdown: Shutdown,
    readiness: Arc<Readiness>,
    limits: Arc<RateLimits>,
    metrics: Arc<Metrics>,
    connections: ServeLimits,
    cluster: Option<Cluster>,
}

impl App {
    /// Bind `server.host:server.port` (port 0 picks a free port) and assemble the router.
    pub fn build(config: Config, server: Arc<McpServer>, extra_routes: Router) -> io::Result<App> {
        App::build_with(config, server, extra_routes, None)
    }

    /// [`App::build`] with the Kasm client that OAuth username lookups use
    /// (`oauth.kasm_username_claim`).
    pub fn build_with(
        config: Config,
        server: Arc<McpServer>,
        extra_routes: Router,
        kasm: Option<Arc<dyn KasmApi>>,
    ) -> io::Result<App> {
        let cluster = Cluster::start(&config.cluster)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        App::build_clustered(config, server, extra_routes, kasm, cluster)
    }

    /// [`App::build_with`] on this replica's [`Cluster`] (`None`: one process, all state in
    /// memory), shared with what `extra_routes` serve (the relay).
    pub fn build_clustered(
        config: Config,
        server: Arc<McpServer>,
        extra_routes: Router,
        kasm: Option<Arc<dyn KasmApi>>,
        cluster: Option<Cluster>,
    ) -> io::Result<App> {
        let invalid_input = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        if let Some(cluster) = &cluster {
            server.join_cluster(cluster.clone());
        }
        let oauth = match config
            .oauth
            .parse()
            .map_err(|e| invalid_input(e.to_string()))?
        {
            Some(settings) => Some(Arc::new(
                OAuthVerifier::new(settings, kasm).map_err(invalid_input)?,
            )),
            None => None,
        };
        let mut authenticator = Authenticator::from_config(&config);
        if let Some(verifier) = &oauth {
            authenticator = authenticator.with_oauth(verifier.clone());
        }
        let min_roles: HashMap<String, Role> = server
            .registry
            .all()
            .iter()
            .map(|tool| (tool.spec().name.clone(), tool.spec().min_role))
            .collect();
        let listener =
            std::net::TcpListener::bind((config.server.host.as_str(), config.server.port))?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;

        let lifecycle = &config.lifecycle;
        let shutdown = Shutdown::new(Duration::from_secs(lifecycle.shutdown_grace_s));
        server.run_tasks_under(&shutdown);
        let readiness = Arc::new(Readiness::new(
            Duration::from_millis(lifecycle.readiness_cache_ms),
            Duration::from_millis(lifecycle.readiness_timeout_ms),
        ));
        let limits = Arc::new(match &cluster {
            Some(cluster) => RateLimits::shared(&config.limits, cluster),
            None => RateLimits::from_config(&config.limits),
        });
        let metrics = Arc::new(Metrics::default());
        let max_body = config.server.max_body_bytes;
        let mut transport = TransportState::new(
            server,
            SessionSealer::from_secret(config.server.session_secret.as_ref()),
            limits.clone(),
            metrics.clone(),
            Duration::from_secs(config.server.sse_keep_alive_s.max(1)),
            max_body,
            shutdown.clone(),
        );
        transport.legacy = LegacySessions::new(config.legacy_sse.queue_messages).with_caps(
            config.legacy_sse.max_streams,
            config.legacy_sse.max_streams_per_principal,
        );
        if let Some(cluster) = &cluster {
            // A dead replica's streams give their slots back within twice the time after
            // which it counts as gone.
            let lease = cluster.liveness_ttl().saturating_mul(2);
            transport.legacy = std::mem::take(&mut transport.legacy)
                .shared(crate::cluster::Leases::new(cluster.clone(), lease));
        }
        transport.cluster = cluster.clone();
        let transport = Arc::new(transport);

        let guard = Arc::new(HostOriginGuard::from_config(&config.server));
        let drain_limits = DrainLimits {
            max_bytes: max_body,
            max_time: Duration::from_millis(config.connections.refused_body_read_ms),
        };
        // Each group of routes gets its whole stack in ONE `Router::layer` call: axum boxes
        // every route once per call (and clones that box per request), so stacking the layers
        // in several calls nested one box inside another per layer group.
        let edge = ServiceBuilder::new()
            .layer(DrainLayer::new(drain_limits))
            .layer(DropUnacceptableLayer)
            .layer(request_id::set_layer())
            .layer(request_id::propagate_layer())
            .layer(trace::layer())
            .layer(TrackLayer::new(metrics.clone()))
            .layer(RefuseLayer::new(guard));
        let per_ip = edge
            .clone()
            .layer(RefuseLayer::new(PerIp::new(limits.clone())));
        let bounded = per_ip
            .clone()
            .layer(DefaultBodyLimit::max(max_body))
            .layer(RefuseLayer::new(BodyLimit::new(max_body)));
        // Step-up sits inside authentication: it reads the principal the bearer check inserted.
        let step_up = oauth.as_ref().map(|verifier| StepUp {
            verifier: verifier.clone(),
            min_roles,
            max_body,
        });
        let authenticated = bounded
            .clone()
            .layer(RefuseLayer::new(Arc::new(authenticator)))
            .layer(RefuseLayer::new(step_up.map(Arc::new)));

        let transports = Router::new()
            .route(
                "/mcp",
                post(streamable::post)
                    .get(streamable::get)
                    .delete(streamable::delete),
            )
            .route("/sse", get(legacy_sse::connect))
            .route("/messages", post(legacy_sse::post_message))
            .with_state(transport)
            .layer(authenticated);
        let metrics_route = Router::new()
            .route("/metrics", get(metrics::serve).with_state(metrics.clone()))
            .layer(bounded);
        // The relay streams bodies itself under a per-ticket cap, so it sits outside the
        // global body limit (file transfers are larger than MCP messages); it has its own
        // rate limits (`[relay_limits]`), so that sessions sharing an egress address do not
        // share — and cannot exhaust — the per-IP budget of each other's result uploads.
        // The OAuth protected-resource metadata (only with `[oauth]`) is under the per-IP limit.
        let mut router = transports.merge(metrics_route);
        if let Some(verifier) = &oauth {
            router = router.merge(crate::oauth::metadata::routes(verifier.clone()).layer(per_ip));
        }
        let probes = Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .with_state(readiness.clone());
        let router = router
            .merge(extra_routes.layer(edge.clone()))
            .merge(probes.layer(edge.clone()))
            .merge(Router::new().fallback(not_found).layer(edge));

        let connections = ServeLimits::from_config(&config.connections, raise_fd_limit());
        Ok(App {
            listener,
            local_addr,
            router,
            shutdown,
            readiness,
            limits,
            metrics,
            connections,
            cluster,
        })
    }

    /// This replica's handle on the shared state, when `[cluster]` is configured.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<addr>` usable from this machine (an unspecified listen address becomes loopback).
    pub fn base_url(&self) -> String {
        base_url(self.local_addr)
    }

    /// The request and tool-call counters (also served at `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Readiness (`/readyz`): the launcher installs the dependency probes here.
    pub fn readiness(&self) -> Arc<Readiness> {
        self.readiness.clone()
    }

    /// Serve until SIGTERM or Ctrl-C, then shut down gracefully.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run_until(stop_signal()).await
    }

    /// Serve until `signal` completes (or [`RunningApp::stop`]), then shut down gracefully as
    /// [`crate::shutdown`] describes: readiness and new work turn 503, in-flight tool calls
    /// get `lifecycle.shutdown_grace_s` to finish and deliver their answers, then the listener
    /// closes and the SSE streams end cleanly.
    pub async fn run_until<F>(self, signal: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let shutdown = self.shutdown.clone();
        let limits = self.limits.clone();
        let janitor_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = janitor_stop.stopping().cancelled() => break,
                    _ = tick.tick() => limits.retain_recent(),
                }
            }
        });
        let upkeep_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::telemetry::UPKEEP_EVERY);
            loop {
                tokio::select! {
                    _ = upkeep_stop.forced().cancelled() => break,
                    _ = upkeep_stop.idle_streams_end().cancelled() => break,
                    _ = tick.tick() => crate::telemetry::upkeep(),
                }
            }
        });
        tokio::spawn({
            let shutdown = shutdown.clone();
            let readiness = self.readiness.clone();
            async move {
                tokio::select! {
                    _ = signal => {}
                    _ = shutdown.stopping().cancelled() => {}
                }
                readiness.set(false);
                shutdown.begin();
            }
        });
        let drain = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.drain().await }
        });
        self.readiness.set(true);
        // The listener stays open while calls drain (the relay takes their output uploads;
        // the transports refuse new work with 503) and closes once they are done.
        let stop_accepting = shutdown.idle_streams_end().clone().cancelled_owned();
        let serve = serve::serve(listener, self.router, self.connections, stop_accepting);
        let deadline = async {
            shutdown.forced().cancelled().await;
            tokio::time::sleep(CLOSE_AFTER_FORCE).await;
        };
        let result = tokio::select! {
            result = serve => result,
            _ = deadline => {
                tracing::warn!("connections still open after the grace period; closing");
                Ok(())
            }
        };
        // Connections are closed; work whose client went away may still be finishing.
        let finished = drain.await.unwrap_or(false);
        // Only now leave the cluster: while calls drained, other replicas could still hand
        // them their relay uploads through this replica's inbox.
        if let Some(cluster) = &self.cluster {
            cluster.stop();
        }
        tracing::info!(all_calls_finished = finished, "shut down");
        result
    }

    /// Run in the background (tests, `demo`).
    pub fn spawn(self) -> RunningApp {
        let local_addr = self.local_addr;
        let stop = self.shutdown.clone();
        let task = tokio::spawn(self.run_until(std::future::pending()));
        RunningApp {
            local_addr,
            stop,
            task,
        }
    }
}

/// A server running in the background.
pub struct RunningApp {
    local_addr: SocketAddr,
    stop: Shutdown,
    task: JoinHandle<io::Result<()>>,
}

impl RunningApp {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn base_url(&self) -> String {
        base_url(self.local_addr)
    }

    /// Shut down gracefully and wait until the listener is closed.
    pub async fn stop(self) -> io::Result<()> {
        self.stop.begin();
        self.task.await.map_err(io::Error::other)?
    }
}

fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("stop signal received; shutting down");
}
