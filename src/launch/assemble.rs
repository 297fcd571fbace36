//! One way to put the product together for `serve` and `demo`: the tool catalog and the
//! resources/completions over a Kasm client, the relay and its routes, the MCP router, and the
//! bound [`App`].

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::kasm::KasmApi;
use crate::mcp::McpServer;
use crate::relay::{Relay, RelayOptions};
use crate::tools::{ToolDeps, catalog};

/// Instructions shown to clients in `initialize`.
const INSTRUCTIONS: &str = "Drive Kasm Workspaces: start a session with create_kasm_session \
(from a workspace listed by get_available_workspaces), run commands in it with \
execute_kasm_command (real stdout, stderr and exit code), read and write files with \
read_kasm_file / write_kasm_file, and destroy the session when done.";

/// How long a replica's `[quotas]` slot outlives its last renewal in Redis: the longest a
/// crashed replica's slots stay taken.
const QUOTA_LEASE: Duration = Duration::from_secs(30);

/// The bound server and the relay, if any.
pub struct Assembled {
    pub app: App,
    pub relay: Option<Arc<Relay>>,
    pub tool_count: usize,
}

/// Where session containers send command output and file bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayPlan {
    /// `server.relay_url` if configured, otherwise no relay: exec is dispatch-only and the
    /// file tools explain why they cannot work (`serve`).
    ConfiguredOnly,
    /// `server.relay_url` if configured, otherwise this server's own loopback URL (`demo`,
    /// whose simulated sessions run on this machine).
    ConfiguredOrSelf,
}

/// Build the tools over `kasm`, the MCP router and the app (bound, not yet running).
pub fn assemble(
    config: Config,
    kasm: Arc<dyn KasmApi>,
    kasm_base_url: String,
    plan: RelayPlan,
) -> std::io::Result<Assembled> {
    install_audit_sink(&config)?;
    let cluster = Cluster::start(&config.cluster)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let configured = config.server.relay_url.clone();
    let relay = (configured.is_some() || plan == RelayPlan::ConfiguredOrSelf).then(|| {
        Arc::new(Relay::new(RelayOptions {
            base_url: configured.clone(),
            cluster: cluster.clone(),
            ..RelayOptions::default()
        }))
    });
    let kasm_for_oauth = kasm.clone();
    let probe = super::readiness::KasmProbe::new(kasm.clone());
    let deps = ToolDeps {
        kasm,
        relay: relay.clone(),
        policy: config.policy.clone(),
        kasm_base_url,
        default_user_id: config.kasm.user_id.clone(),
        session_start_timeout: Duration::from_secs(config.kasm.session_start_timeout_s),
        max_request_bytes: config.server.max_body_bytes,
        images: config.images.clone(),
        quotas: config.quotas.clone(),
        usage: Arc::new(crate::usage::MemoryUsage::default()),
        owners: Default::default(),
        desktop: config.desktop.clone(),
        // [cluster]: jobs live in Redis, so any replica reads, lists and kills a job another
        // one started.
        jobs: match &cluster {
            Some(cluster) => Arc::new(crate::jobs::RedisJobs::new(
                cluster.clone(),
                Duration::from_secs(config.jobs.finished_ttl_s),
                config.jobs.window_bytes,
            )),
            None => Arc::new(crate::jobs::MemoryJobs::new(
                Duration::from_secs(config.jobs.finished_ttl_s),
                config.jobs.window_bytes,
            )),
        },
        jobs_config: config.jobs.clone(),
        shared_quotas: cluster
            .clone()
            .map(|c| crate::cluster::SharedQuotas::new(c, QUOTA_LEASE)),
    };
    if let Some(relay) = &relay {
        relay.set_tagged(Arc::new(crate::tools::JobUploads {
            store: deps.jobs.clone(),
        }));
    }
    let resources = crate::tools::resources::provider(deps.clone());
    let _reaper = crate::tools::reaper::spawn(Arc::new(deps.clone()));
    let tools = catalog(deps);
    let tool_count = tools.len();
    let mut server = McpServer::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
        .title("Kasm Workspaces")
        .instructions(INSTRUCTIONS)
        .tools(tools)
        .resources(resources.clone())
        .completions(resources)
        .batch_limits(crate::mcp::BatchLimits {
            max_items: config.batch.max_items,
            concurrency: config.batch.concurrency,
        })
        .request_state_key(crate::keys::from_secret(
            config.server.session_secret.as_ref(),
            crate::keys::KeyUse::RequestState,
        ));
    // [cluster]: tasks live in Redis, so any replica answers for a task another one runs.
    if let Some(cluster) = &cluster {
        server = server.task_store(Arc::new(crate::mcp::tasks::RedisTaskStore::new(
            cluster.clone(),
        )));
    }
    let server = server.build();
    let routes = match &relay {
        Some(relay) => {
            crate::transport::relay::routes_with_limits(relay.clone(), &config.relay_limits)
        }
        None => axum::Router::new(),
    };
    let app = App::build_clustered(
        config,
        Arc::new(server),
        routes,
        Some(kasm_for_oauth),
        cluster.clone(),
    )?;
    let mut probes: Vec<Arc<dyn crate::http::health::DependencyProbe>> = vec![Arc::new(probe)];
    if let Some(cluster) = cluster {
        probes.push(Arc::new(super::readiness::RedisProbe::new(cluster)));
    }
    app.readiness().install_probes(probes);
    if let (Some(relay), None) = (&relay, &configured) {
        relay.set_base_url(app.base_url());
    }
    Ok(Assembled {
        app,
        relay,
        tool_count,
    })
}

/// Send audit events where `[audit]` says (the first assembly in a process decides).
fn install_audit_sink(config: &Config) -> std::io::Result<()> {
    use crate::audit::{Sink, file_sink, install};
    use crate::config::AuditSinkKind;
    let sink = match (config.audit.sink, &config.audit.file) {
        (AuditSinkKind::Log, _) => Sink::Log,
        (AuditSinkKind::Stdout, _) => Sink::Stdout,
        (AuditSinkKind::File, Some(path)) => file_sink(path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot open audit.file {}: {e}", path.display()),
            )
        })?,
        (AuditSinkKind::File, None) => Sink::Log,
    };
    install(sink);
    Ok(())
}
