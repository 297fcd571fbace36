//! The configuration reference (`docs/CONFIGURATION.md`): every key with its environment
//! variables, its default and its validation rule. Keys and defaults come from the types
//! themselves — each entry reads its default from `Config::default()` through the field, and
//! a test compares the documented keys with the field lists serde reports for each section
//! (`deny_unknown_fields`), so a key added to a config struct without an entry here fails the
//! build's tests, as does a stale document.

use super::Config;
use super::load::ENV_ALIASES;

/// One documented key.
pub struct KeyDoc {
    /// `section.key` (`auth.tokens[].name` for the fields of each token).
    pub key: &'static str,
    /// The default, read from the type's `Default`.
    pub default: fn(&Config) -> String,
    /// What it does.
    pub about: &'static str,
    /// What `Config::validate` accepts (empty: any value of the type).
    pub rule: &'static str,
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn unset(_: &Config) -> String {
    "unset".into()
}

/// A default through its serde form: `unset` for `None`, a string without quotes.
fn shown<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Null) => "unset".into(),
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("(not shown: {e})"),
    }
}

/// A default that is not a field of `Config::default()` (per-token fields).
fn fixed(_: &Config, text: &str) -> String {
    text.into()
}

macro_rules! key {
    ($key:literal, |$c:ident| $default:expr, $about:literal, $rule:literal) => {
        KeyDoc {
            key: $key,
            default: |$c: &Config| $default,
            about: $about,
            rule: $rule,
        }
    };
}

/// Every key, in the order of the document.
pub fn keys() -> Vec<KeyDoc> {
    vec![
        key!(
            "server.host",
            |c| c.server.host.clone(),
            "Address to listen on; `0.0.0.0` inside a container.",
            "an IP address (or `localhost`)"
        ),
        key!(
            "server.port",
            |c| c.server.port.to_string(),
            "TCP port (0 picks a free port).",
            "0–65535"
        ),
        key!(
            "server.allowed_hosts",
            |c| list(&c.server.allowed_hosts),
            "`Host` header values accepted besides the loopback names (DNS-rebinding protection); `*` allows any. Comma-separated in the environment.",
            ""
        ),
        key!(
            "server.allowed_origins",
            |c| list(&c.server.allowed_origins),
            "`Origin` header values accepted (`scheme://host[:port]`); requests without `Origin` pass. Comma-separated in the environment.",
            ""
        ),
        key!(
            "server.max_body_bytes",
            |c| c.server.max_body_bytes.to_string(),
            "Largest MCP request body (413 above it).",
            "at least 1024"
        ),
        key!(
            "server.relay_url",
            |c| c.server.relay_url.clone().unwrap_or_else(|| "unset".into()),
            "URL at which Kasm session containers reach this server (command output and file bytes go through `/relay/{ticket}`). Unset: commands are dispatch-only and the file tools explain why.",
            "an absolute http:// or https:// URL"
        ),
        key!(
            "server.sse_keep_alive_s",
            |c| c.server.sse_keep_alive_s.to_string(),
            "Seconds between SSE keep-alive comments; a call still running after this long is answered as a stream.",
            "0 is treated as 1"
        ),
        key!(
            "server.session_secret",
            |c| unset(c),
            "Key sealing Streamable HTTP session ids; set it (32+ random characters, the same on every replica) to keep sessions valid across restarts and replicas. Secret.",
            ""
        ),
        key!(
            "kasm.api_url",
            |c| unset(c),
            "Base URL of the Kasm server, without `/api/public`. Required by `serve`.",
            "an absolute http:// or https:// URL"
        ),
        key!(
            "kasm.api_key",
            |c| unset(c),
            "Developer API key. Required by `serve`. Secret.",
            ""
        ),
        key!(
            "kasm.api_secret",
            |c| unset(c),
            "Developer API secret. Required by `serve`. Secret.",
            ""
        ),
        key!(
            "kasm.user_id",
            |c| unset(c),
            "Kasm user (UUID) that tokens without their own `kasm_user_id` act as.",
            "a Kasm user UUID"
        ),
        key!(
            "kasm.verify_tls",
            |c| c.kasm.verify_tls.to_string(),
            "Verify Kasm's TLS certificate; switch off only in a lab.",
            ""
        ),
        key!(
            "kasm.ca_bundle",
            |c| unset(c),
            "PEM file with extra CA certificates to trust (private PKI).",
            "a readable file"
        ),
        key!(
            "kasm.connect_timeout_ms",
            |c| c.kasm.connect_timeout_ms.to_string(),
            "Longest wait for the TCP/TLS connection to Kasm.",
            "greater than 0"
        ),
        key!(
            "kasm.request_timeout_ms",
            |c| c.kasm.request_timeout_ms.to_string(),
            "Longest wait for one Kasm call, body included.",
            "greater than 0"
        ),
        key!(
            "kasm.read_retries",
            |c| c.kasm.read_retries.to_string(),
            "Extra attempts for read-only Kasm calls after a transient failure (never for create/exec).",
            ""
        ),
        key!(
            "kasm.session_start_timeout_s",
            |c| c.kasm.session_start_timeout_s.to_string(),
            "Longest wait for a new session to reach `running`.",
            ""
        ),
        key!(
            "auth.tokens",
            |c| fixed(c, "[]"),
            "Bearer tokens (`[[auth.tokens]]` tables), stored as SHA-256 digests; `kasm-mcp hash-key` mints one. `serve` needs at least one unless `auth.disabled`.",
            ""
        ),
        key!(
            "auth.tokens[].name",
            |c| fixed(c, "—"),
            "The principal's identity (rate limits, sessions, audit).",
            "required; unique"
        ),
        key!(
            "auth.tokens[].sha256",
            |c| fixed(c, "—"),
            "SHA-256 hex digest of the token.",
            "required; 64 hex digits"
        ),
        key!(
            "auth.tokens[].role",
            |c| fixed(c, "operator"),
            "What the token may call: `viewer` (read-only tools) < `operator` (sessions, commands, files) < `admin` (users, all sessions).",
            "viewer, operator or admin"
        ),
        key!(
            "auth.tokens[].kasm_user_id",
            |c| fixed(c, "kasm.user_id"),
            "Kasm user this token acts as.",
            "a Kasm user UUID"
        ),
        key!(
            "auth.disabled",
            |c| c.auth.disabled.to_string(),
            "Serve without authentication (for the MCP conformance suite).",
            "only with a loopback server.host"
        ),
        key!(
            "limits.per_ip_per_second",
            |c| c.limits.per_ip_per_second.to_string(),
            "Requests per second per client IP, before authentication (behind a proxy every client shares the proxy's address).",
            ""
        ),
        key!(
            "limits.per_ip_burst",
            |c| c.limits.per_ip_burst.to_string(),
            "Burst allowance of the per-IP limit.",
            ""
        ),
        key!(
            "limits.per_principal_per_minute",
            |c| c.limits.per_principal_per_minute.to_string(),
            "Tool calls and resource reads per minute per token.",
            ""
        ),
        key!(
            "limits.per_principal_burst",
            |c| c.limits.per_principal_burst.to_string(),
            "Burst allowance of the per-token limit.",
            ""
        ),
        key!(
            "policy.allowed_roots",
            |c| list(&c.policy.allowed_roots),
            "Directories inside sessions the file tools may touch (checked again in the session after resolving symlinks). Comma-separated in the environment.",
            "at least one; absolute paths without `..`"
        ),
        key!(
            "policy.default_timeout_s",
            |c| c.policy.default_timeout_s.to_string(),
            "Command timeout when the caller gives none.",
            "1..=policy.max_timeout_s"
        ),
        key!(
            "policy.max_timeout_s",
            |c| c.policy.max_timeout_s.to_string(),
            "Longest command timeout a caller may ask for.",
            ""
        ),
        key!(
            "policy.default_max_output_bytes",
            |c| c.policy.default_max_output_bytes.to_string(),
            "Bytes of stdout (and, separately, stderr) returned when the caller gives no limit.",
            "1..=policy.max_output_bytes"
        ),
        key!(
            "policy.max_output_bytes",
            |c| c.policy.max_output_bytes.to_string(),
            "Most output bytes a caller may ask for.",
            ""
        ),
        key!(
            "policy.max_file_bytes",
            |c| c.policy.max_file_bytes.to_string(),
            "Largest file read or written through the relay.",
            ""
        ),
        key!(
            "policy.allowed_exec_users",
            |c| list(&c.policy.allowed_exec_users),
            "Container users `execute_kasm_command` may run as through its `user` argument; empty: only the image's own user.",
            ""
        ),
        key!(
            "policy.commands.mode",
            |c| shown(&c.policy.commands.spec().mode),
            "How commands no rule matches are treated: `deny-list` runs them, `allow-list` runs only what an `allow` rule matches.",
            "`deny-list` or `allow-list`"
        ),
        key!(
            "policy.commands.unresolved",
            |c| shown(&c.policy.commands.spec().unresolved),
            "Decision for commands that cannot be judged before they run (`eval \"$CMD\"`, a `$VAR` command name, a parse error). Unset: `confirm` in deny-list mode, `deny` in allow-list mode.",
            "`allow`, `confirm` or `deny`"
        ),
        key!(
            "policy.commands.default_rules",
            |c| c.policy.commands.spec().default_rules.to_string(),
            "Whether the shipped rules of `config/policy.example.toml` (embedded in the binary) are in force.",
            ""
        ),
        key!(
            "policy.commands.disabled_rules",
            |c| list(&c.policy.commands.spec().disabled_rules),
            "Ids of shipped rules to switch off (and `fork-bomb`, the built-in fork-bomb check).",
            "ids of shipped rules"
        ),
        key!(
            "policy.commands.rules",
            |c| match c.policy.commands.spec().rules.len() {
                0 => "[]".into(),
                n => format!("{n} rules"),
            },
            "The operator's own rules (`[[policy.commands.rules]]` tables: `id`, `decision`, `reason`, `pattern`, `args`, `unless_args`, `last_arg`, `piped_from`, `roles`, `images`, `examples`; see `config/policy.example.toml`). A rule with a shipped rule's id replaces it.",
            "unique ids; every rule's examples must judge as the rule says (checked at startup)"
        ),
        key!(
            "policy.env.denied",
            |c| list(&c.policy.env.denied),
            "Environment variable names `execute_kasm_command`'s `env` may not set; an entry ending in `*` covers every name with that prefix (`LD_*`).",
            ""
        ),
        key!(
            "policy.env.allowed",
            |c| list(&c.policy.env.allowed),
            "Names taken off `policy.env.denied` (e.g. `[\"PATH\"]`).",
            ""
        ),
        key!(
            "connections.header_read_timeout_s",
            |c| c.connections.header_read_timeout_s.to_string(),
            "Seconds a client has to send a request's complete headers, from its first byte.",
            "1–600"
        ),
        key!(
            "connections.idle_timeout_s",
            |c| c.connections.idle_timeout_s.to_string(),
            "Seconds a connection may stay open with no request in progress (keep it above a reverse proxy's keep-alive timeout).",
            "1–3600"
        ),
        key!(
            "connections.max_open",
            |c| c.connections.max_open.to_string(),
            "Most connections open at once; lowered at start-up to fit the file-descriptor limit.",
            "at least 1"
        ),
        key!(
            "connections.max_open_per_ip",
            |c| c.connections.max_open_per_ip.to_string(),
            "Most connections open at once from one client address; 0 switches the cap off (behind a proxy every client has the proxy's address).",
            "0..=connections.max_open"
        ),
        key!(
            "connections.refused_body_read_ms",
            |c| c.connections.refused_body_read_ms.to_string(),
            "Milliseconds spent reading and discarding the body of a request refused early (401, 403, 404, 413, 429) so the connection can carry the next request.",
            "any"
        ),
        key!(
            "batch.max_items",
            |c| c.batch.max_items.to_string(),
            "Most messages in one JSON-RPC batch (protocol 2025-03-26); a longer batch is refused whole.",
            "1–10000"
        ),
        key!(
            "batch.concurrency",
            |c| c.batch.concurrency.to_string(),
            "How many items of one batch run at the same time.",
            "1–256"
        ),
        key!(
            "legacy_sse.queue_messages",
            |c| c.legacy_sse.queue_messages.to_string(),
            "Most messages waiting for one legacy /sse stream; beyond it POST /messages gets 429.",
            "1–65536"
        ),
        key!(
            "legacy_sse.max_streams",
            |c| c.legacy_sse.max_streams.to_string(),
            "Most legacy /sse streams open at once, all principals together (over every replica with [cluster]); beyond it GET /sse gets 503.",
            "1–1000000"
        ),
        key!(
            "legacy_sse.max_streams_per_principal",
            |c| c.legacy_sse.max_streams_per_principal.to_string(),
            "Most legacy /sse streams one principal may hold open (over every replica with [cluster]); beyond it GET /sse gets 429.",
            "1–legacy_sse.max_streams"
        ),
        key!(
            "relay_limits.unknown_ticket_per_second",
            |c| c.relay_limits.unknown_ticket_per_second.to_string(),
            "Requests naming an unknown, used or expired relay ticket, per second per client address.",
            "at least 1"
        ),
        key!(
            "relay_limits.unknown_ticket_burst",
            |c| c.relay_limits.unknown_ticket_burst.to_string(),
            "Burst allowance of the unknown-ticket limit.",
            "at least 1"
        ),
        key!(
            "relay_limits.per_ticket_per_minute",
            |c| c.relay_limits.per_ticket_per_minute.to_string(),
            "Requests one live relay ticket accepts per minute (retries of the same upload; counted over every replica with [cluster]).",
            "at least 1"
        ),
        key!(
            "relay_limits.per_ticket_burst",
            |c| c.relay_limits.per_ticket_burst.to_string(),
            "Burst allowance of the per-ticket limit.",
            "at least 1"
        ),
        key!(
            "lifecycle.shutdown_grace_s",
            |c| c.lifecycle.shutdown_grace_s.to_string(),
            "On SIGTERM/SIGINT, how long running tool calls (task calls too) may finish before they are cut off; a task cut off gets up to 3 s more to record that. Keep it at least 5 s below the orchestrator's kill timeout.",
            "1–3600"
        ),
        key!(
            "lifecycle.readiness_cache_ms",
            |c| c.lifecycle.readiness_cache_ms.to_string(),
            "How long `/readyz` reuses its Kasm probe (never more than one probe in flight).",
            "0–60000"
        ),
        key!(
            "lifecycle.readiness_timeout_ms",
            |c| c.lifecycle.readiness_timeout_ms.to_string(),
            "A Kasm probe slower than this makes `/readyz` report Kasm unreachable.",
            "100–60000"
        ),
        key!(
            "cluster.redis_url",
            |c| unset(c),
            "Redis (or Valkey) holding the state replicas share: relay tickets and results, legacy SSE routing, ended Streamable HTTP sessions, rate-limit counters. `rediss://` for TLS; the password goes in the URL. Unset: all state in memory, one replica. Secret.",
            "a redis:// or rediss:// URL with a host"
        ),
        key!(
            "cluster.key_prefix",
            |c| c.cluster.key_prefix.clone(),
            "Prefix of every Redis key and channel (several deployments may share one Redis).",
            "1–64 of letters, digits, `.` `_` `-` `:`"
        ),
        key!(
            "cluster.replica_id",
            |c| c
                .cluster
                .replica_id
                .clone()
                .unwrap_or_else(|| "host name + random suffix".into()),
            "This replica's name in Redis; must differ between replicas.",
            "1–64 of letters, digits, `.` `_` `-` `:`"
        ),
        key!(
            "cluster.op_timeout_ms",
            |c| c.cluster.op_timeout_ms.to_string(),
            "Most milliseconds one Redis operation may take; a request needing shared state fails with a clear error after it.",
            "10–60000"
        ),
        key!(
            "cluster.connect_timeout_ms",
            |c| c.cluster.connect_timeout_ms.to_string(),
            "Most milliseconds one connection attempt to Redis may take (reconnects are automatic).",
            "10–60000"
        ),
        key!(
            "cluster.liveness_ttl_ms",
            |c| c.cluster.liveness_ttl_ms.to_string(),
            "A replica counts as gone this long after its last heartbeat (it beats every third of it); posts to a legacy SSE stream it held then get 404, and its streams' slots of the legacy_sse caps come back within twice this.",
            "1000–600000"
        ),
        key!(
            "oauth.enabled",
            |c| c.oauth.enabled.to_string(),
            "Accept OAuth 2.1 access tokens from an authorization server (and serve the protected-resource metadata).",
            ""
        ),
        key!(
            "oauth.issuer",
            |c| shown(&c.oauth.issuer),
            "The authorization server's issuer identifier; tokens must carry exactly this `iss`.",
            "required when enabled; an http(s) URL"
        ),
        key!(
            "oauth.resource",
            |c| shown(&c.oauth.resource),
            "This server's canonical URI as clients reach it (e.g. `https://mcp.example.com/mcp`): the audience tokens must be minted for (RFC 8707) and the metadata's `resource`.",
            "required when enabled; an http(s) URL without query or fragment"
        ),
        key!(
            "oauth.discovery_url",
            |c| shown(&c.oauth.discovery_url),
            "Where the issuer's metadata is (RFC 8414 or OpenID discovery). Unset: `<issuer>/.well-known/oauth-authorization-server`, then `…/openid-configuration`.",
            "an http(s) URL"
        ),
        key!(
            "oauth.jwks_uri",
            |c| shown(&c.oauth.jwks_uri),
            "The issuer's JWKS URL. Unset: taken from the discovery document.",
            "an http(s) URL"
        ),
        key!(
            "oauth.algorithms",
            |c| list(&c.oauth.algorithms),
            "Signature algorithms accepted.",
            "non-empty; each `RS256`, `ES256` or `EdDSA`"
        ),
        key!(
            "oauth.leeway_s",
            |c| c.oauth.leeway_s.to_string(),
            "Clock skew tolerated on `exp` and `nbf`, in seconds.",
            "0–300"
        ),
        key!(
            "oauth.http_timeout_ms",
            |c| c.oauth.http_timeout_ms.to_string(),
            "Timeout of every request to the authorization server.",
            "at least 1"
        ),
        key!(
            "oauth.jwks_min_refresh_s",
            |c| c.oauth.jwks_min_refresh_s.to_string(),
            "Fewest seconds between two JWKS fetches caused by an unknown `kid`.",
            ""
        ),
        key!(
            "oauth.jwks_max_age_s",
            |c| c.oauth.jwks_max_age_s.to_string(),
            "Cached keys are refetched after this many seconds (kept if the fetch fails).",
            "at least `oauth.jwks_min_refresh_s`"
        ),
        key!(
            "oauth.scope_roles",
            |c| shown(&c.oauth.scope_roles),
            "The `[oauth.scope_roles]` table: scope = role. A token's role is the highest role of its scopes; a token with none of them is refused.",
            "non-empty; scopes are printable ASCII without spaces, quotes or backslashes; roles viewer, operator or admin"
        ),
        key!(
            "oauth.challenge_scopes",
            |c| list(&c.oauth.challenge_scopes),
            "Scopes a 401 challenge asks for. Empty: the least scope that grants a role, so clients step up (403 `insufficient_scope`) when a call needs more.",
            "each a key of `oauth.scope_roles`"
        ),
        key!(
            "oauth.static_tokens",
            |c| c.oauth.static_tokens.to_string(),
            "Keep accepting the `[[auth.tokens]]` static tokens beside OAuth tokens.",
            ""
        ),
        key!(
            "oauth.kasm_user_id_claim",
            |c| shown(&c.oauth.kasm_user_id_claim),
            "Claim holding the Kasm user id (32 hex) the principal acts as.",
            "not together with `oauth.kasm_username_claim`"
        ),
        key!(
            "oauth.kasm_username_claim",
            |c| shown(&c.oauth.kasm_username_claim),
            "Claim holding a Kasm username (e.g. `email`), looked up with Kasm `get_user`. Neither claim: `kasm.user_id`.",
            "not together with `oauth.kasm_user_id_claim`"
        ),
        key!(
            "oauth.shared_kasm_user",
            |c| c.oauth.shared_kasm_user.to_string(),
            "With neither claim set, every OAuth principal acts as `kasm.user_id` and so can see and use each other's sessions: this must be chosen explicitly.",
            "required `true` when neither claim is set (OAuth enabled); refused together with a claim"
        ),
        key!(
            "oauth.auto_create_kasm_user",
            |c| c.oauth.auto_create_kasm_user.to_string(),
            "Create the Kasm user named by `oauth.kasm_username_claim` when it does not exist.",
            ""
        ),
        key!(
            "oauth.kasm_user_cache_s",
            |c| c.oauth.kasm_user_cache_s.to_string(),
            "How long a username → Kasm user id lookup is cached.",
            ""
        ),
        key!(
            "oauth.introspection_endpoint",
            |c| shown(&c.oauth.introspection_endpoint),
            "RFC 7662 endpoint for opaque (non-JWT) access tokens. Unset: opaque tokens are refused.",
            "an http(s) URL"
        ),
        key!(
            "oauth.introspection_client_id",
            |c| shown(&c.oauth.introspection_client_id),
            "This server's client id at the introspection endpoint (HTTP Basic).",
            "required with `oauth.introspection_endpoint`"
        ),
        key!(
            "oauth.introspection_client_secret",
            |c| if c.oauth.introspection_client_secret.is_some() {
                "(set)".into()
            } else {
                "unset".into()
            },
            "Its client secret (never logged).",
            "required with `oauth.introspection_endpoint`"
        ),
        key!(
            "oauth.introspection_cache_s",
            |c| c.oauth.introspection_cache_s.to_string(),
            "Longest time an active introspection answer is reused (never past the token's `exp`).",
            ""
        ),
        key!(
            "images.viewer",
            |c| shown(&c.images.viewer),
            "Images (friendly name, case-insensitive, or image id) the viewer role may launch and see in `get_available_workspaces`. Unset: every image.",
            ""
        ),
        key!(
            "images.operator",
            |c| shown(&c.images.operator),
            "The same for the operator role.",
            ""
        ),
        key!(
            "images.admin",
            |c| shown(&c.images.admin),
            "The same for the admin role.",
            ""
        ),
        key!(
            "quotas.max_sessions",
            |c| shown(&c.quotas.max_sessions),
            "Sessions a principal may have created through this server and not yet destroyed (over every replica with [cluster]). Unset: no limit.",
            "at least 1"
        ),
        key!(
            "quotas.max_concurrent_calls",
            |c| shown(&c.quotas.max_concurrent_calls),
            "Tool calls a principal may have running at once. Unset: no limit.",
            "at least 1"
        ),
        key!(
            "quotas.max_concurrent_exec",
            |c| shown(&c.quotas.max_concurrent_exec),
            "`execute_kasm_command` calls a principal may have running at once. Unset: no limit.",
            "at least 1"
        ),
        key!(
            "quotas.max_pending_tickets",
            |c| shown(&c.quotas.max_pending_tickets),
            "Relay round trips (exec and file transfers) a principal may have waiting at once. Unset: no limit.",
            "at least 1"
        ),
        key!(
            "quotas.session_idle_timeout_s",
            |c| shown(&c.quotas.session_idle_timeout_s),
            "Destroy a session created through this server after this long without a tool call on it. Unset: never.",
            "at least 1"
        ),
        key!(
            "quotas.session_max_lifetime_s",
            |c| shown(&c.quotas.session_max_lifetime_s),
            "Destroy a session created through this server this long after its creation, whatever keepalives say. Unset: never.",
            "at least 1"
        ),
        key!(
            "quotas.reaper_interval_s",
            |c| c.quotas.reaper_interval_s.to_string(),
            "How often the reaper looks for sessions past their idle timeout or lifetime.",
            "at least 1"
        ),
        key!(
            "audit.sink",
            |c| shown(&c.audit.sink),
            "Where audit events go: `log` (a `tracing` event of target `audit`), `stdout` (one JSON object per line), `file` (appended to `audit.file`).",
            "`log`, `stdout` or `file`"
        ),
        key!(
            "audit.file",
            |c| shown(&c.audit.file),
            "The append-only JSON-lines file of `audit.sink = \"file\"`.",
            "required when `audit.sink = \"file\"`"
        ),
        key!(
            "desktop.display",
            |c| c.desktop.display.clone(),
            "X display the desktop tools act on inside the session (`DISPLAY`); Kasm images use `:1`.",
            "an X display name `[host]:N[.S]`"
        ),
        key!(
            "desktop.max_screenshot_side",
            |c| c.desktop.max_screenshot_side.to_string(),
            "Screenshots are scaled down so their longer side is at most this many pixels; `desktop_action` coordinates are in that scaled space.",
            "64–4096"
        ),
        key!(
            "desktop.format",
            |c| shown(&c.desktop.format),
            "Screenshot image format.",
            "`jpeg` or `png`"
        ),
        key!(
            "desktop.settle_ms",
            |c| c.desktop.settle_ms.to_string(),
            "Milliseconds to wait after an action before the screenshot it asks for.",
            "0–10000"
        ),
        key!(
            "jobs.yield_after_s",
            |c| c.jobs.yield_after_s.to_string(),
            "A foreground `execute_kasm_command` still running after this many seconds is moved to the background and returns its output so far with a `job_id`; keep it below your clients' request timeout (often 60 s).",
            "1–3600"
        ),
        key!(
            "jobs.finished_ttl_s",
            |c| c.jobs.finished_ttl_s.to_string(),
            "Seconds a finished job (exit code, output window) stays readable with `get_command_output` and `list_commands`.",
            "at least 1"
        ),
        key!(
            "jobs.window_bytes",
            |c| c.jobs.window_bytes.to_string(),
            "Bytes of the newest stdout, and separately stderr, kept per job (in memory; with `[cluster]` in Redis, where each output chunk rewrites the window, so keep it modest); the whole output is in the spill files inside the session.",
            "1024–67108864"
        ),
        key!(
            "jobs.max_jobs_per_principal",
            |c| c.jobs.max_jobs_per_principal.to_string(),
            "Most running jobs (commands in flight, foreground or background) one principal may hold, counted over every replica with `[cluster]`; as many finished ones are kept for reading, the oldest going first.",
            "at least 1"
        ),
        key!(
            "jobs.chunk_bytes",
            |c| c.jobs.chunk_bytes.to_string(),
            "Most output bytes per stream the in-session wrapper sends per interval (faster output is skipped in the stream, never in the spill files).",
            "1024–1048576"
        ),
        key!(
            "jobs.chunk_interval_ms",
            |c| c.jobs.chunk_interval_ms.to_string(),
            "Milliseconds between the wrapper's output chunks (and so between progress lines).",
            "100–10000"
        ),
        key!(
            "jobs.kill_grace_s",
            |c| c.jobs.kill_grace_s.to_string(),
            "`kill_command`'s default wait between its first signal and SIGKILL.",
            "0–600"
        ),
        key!(
            "runtime.worker_threads",
            |c| c.runtime.worker_threads.to_string(),
            "Threads that run requests (`serve`); 0 = one per CPU core (or `TOKIO_WORKER_THREADS`). 1 cuts thread wake-ups per call at low load but caps the server at one core.",
            "0–1024"
        ),
    ]
}

/// The environment variables that set `key`.
pub fn env_vars(key: &str) -> Vec<String> {
    if key.contains("[]") {
        return Vec::new();
    }
    let mut vars: Vec<String> = ENV_ALIASES
        .iter()
        .filter(|(_, k)| *k == key)
        .map(|(var, _)| (*var).to_owned())
        .collect();
    vars.push(format!(
        "KASM_MCP_{}",
        key.to_ascii_uppercase().replace('.', "__")
    ));
    vars
}

/// The reference table as Markdown (the generated part of `docs/CONFIGURATION.md`).
pub fn markdown() -> String {
    let defaults = Config::default();
    let mut out = String::new();
    let mut section = "";
    for doc in keys() {
        // The table the key is in; the fields of `[[auth.tokens]]` stay under `[auth]`.
        let this = match doc.key.rsplit_once('.') {
            Some((table, _)) if !table.contains("[]") => table,
            _ => doc.key.split('.').next().unwrap_or_default(),
        };
        if this != section {
            section = this;
            out.push_str(&format!(
                "\n### [{section}]\n\n| key | environment | default | accepted | meaning |\n| --- | --- | --- | --- | --- |\n"
            ));
        }
        let env = env_vars(doc.key)
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join("<br>");
        let rule = if doc.rule.is_empty() { "any" } else { doc.rule };
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} | {} |\n",
            doc.key,
            if env.is_empty() {
                "—".to_owned()
            } else {
                env
            },
            (doc.default)(&defaults),
            rule,
            doc.about
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys serde expects in the table at `path` (`""`: the top level, i.e. the
    /// sections of `Config`), as full dotted names, read from its unknown-field error.
    fn fields_of(path: &str) -> Vec<String> {
        let var = if path.is_empty() {
            "KASM_MCP_ZZ_NOT_A_KEY".to_owned()
        } else {
            format!(
                "KASM_MCP_{}__ZZ_NOT_A_KEY",
                path.to_ascii_uppercase().replace('.', "__")
            )
        };
        let err = match Config::load_from(None, &[(var, "1".to_owned())]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an unknown key in [{path}] loaded"),
        };
        // "… unknown field: found `zz`, expected `one of `host`, `port`, …``"
        let expected = err
            .split("expected")
            .nth(1)
            .unwrap_or_else(|| panic!("no field list in {err}"));
        expected
            .split('`')
            .filter(|f| {
                !f.is_empty()
                    && f.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .map(|f| {
                if path.is_empty() {
                    f.to_owned()
                } else {
                    format!("{path}.{f}")
                }
            })
            .collect()
    }

    /// Every field of the table at `path` is a documented key, or a sub-table whose own
    /// fields are (recursively); returns the tables visited.
    fn check_documented(path: &str, documented: &[&str], tables: &mut Vec<String>) {
        tables.push(path.to_owned());
        for field in fields_of(path) {
            if documented.contains(&field.as_str()) {
                continue;
            }
            let prefix = format!("{field}.");
            assert!(
                documented.iter().any(|k| k.starts_with(&prefix)),
                "{field} is not documented (add it to config::reference::keys and regenerate \
                 docs/CONFIGURATION.md)"
            );
            check_documented(&field, documented, tables);
        }
    }

    #[test]
    fn every_key_of_every_section_is_documented_and_nothing_else() {
        let documented: Vec<&str> = keys().iter().map(|k| k.key).collect();
        let sections = fields_of("");
        // The list comes from `Config` itself: a new section shows up here on its own.
        for expected in ["server", "policy", "oauth", "lifecycle"] {
            assert!(sections.iter().any(|s| s == expected), "{sections:?}");
        }
        let mut tables = Vec::new();
        for section in &sections {
            assert!(
                documented
                    .iter()
                    .any(|k| k.starts_with(&format!("{section}."))),
                "section [{section}] of Config has no documented key"
            );
            check_documented(section, &documented, &mut tables);
        }
        for key in documented.iter().filter(|k| !k.contains("[]")) {
            let (table, _) = key.rsplit_once('.').unwrap_or(("", key));
            assert!(
                tables.iter().any(|t| t == table),
                "{key}: [{table}] is not a table of Config"
            );
            assert!(
                fields_of(table).iter().any(|f| f == key),
                "{key} is no longer a key"
            );
        }
    }

    #[test]
    fn env_vars_follow_the_loader() {
        assert_eq!(
            env_vars("server.port"),
            ["MCP_SERVER_PORT", "KASM_MCP_SERVER__PORT"]
        );
        assert_eq!(
            env_vars("lifecycle.shutdown_grace_s"),
            ["KASM_MCP_LIFECYCLE__SHUTDOWN_GRACE_S"]
        );
        let config = Config::load_from(
            None,
            &[("KASM_MCP_LIFECYCLE__SHUTDOWN_GRACE_S".into(), "7".into())],
        )
        .unwrap();
        assert_eq!(config.lifecycle.shutdown_grace_s, 7);
    }
}
