//! Configuration: built-in defaults < `config/kasm-mcp.toml` (or `--config FILE`) < environment.
//!
//! The original product's variable names are honoured (`KASM_API_URL`, `KASM_API_KEY`,
//! `KASM_API_SECRET`, `KASM_USER_ID`, `MCP_SERVER_HOST`, `MCP_SERVER_PORT`, `ALLOWED_ROOTS`,
//! `KASM_VERIFY_TLS`, `KASM_CA_BUNDLE`, `MCP_RELAY_URL`); every other key can be set as
//! `KASM_MCP_<SECTION>__<KEY>`. [`Config::validate`] turns every bad value into a message that
//! names the key, the value and the fix. Secrets are `SecretString`s: redacted in `Debug`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Default location of the optional configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "config/kasm-mcp.toml";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub kasm: KasmConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
}

/// The HTTP side: where to listen and which Host/Origin headers to accept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Host header values accepted (with or without port). Empty = loopback names only.
    pub allowed_hosts: Vec<String>,
    /// Origin header values accepted (`scheme://host[:port]`). Requests without Origin pass.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body (413 above it).
    pub max_body_bytes: usize,
    /// URL at which Kasm session containers reach this server (`…/relay/{ticket}`).
    /// Unset: `execute_kasm_command` is dispatch-only and the file tools explain why.
    pub relay_url: Option<String>,
    /// Seconds between SSE keep-alive comments.
    pub sse_keep_alive_s: u64,
    /// Key that seals Streamable HTTP session ids (HMAC). Unset: random per process.
    /// A `SecretString`, so `Debug` redacts it; never serialized (it has no default).
    #[serde(skip_serializing)]
    pub session_secret: Option<SecretString>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            relay_url: None,
            sse_keep_alive_s: 15,
            session_secret: None,
        }
    }
}

/// How to reach Kasm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KasmConfig {
    /// Base URL of the Kasm server, e.g. `https://kasm.example.com` (no `/api/public`).
    pub api_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub api_secret: Option<SecretString>,
    /// Kasm user that principals without their own `kasm_user_id` act as.
    pub user_id: Option<String>,
    pub verify_tls: bool,
    /// PEM file with extra CA certificates to trust (private PKI).
    pub ca_bundle: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Extra attempts for read-only calls only (never for request_kasm/exec/create_user).
    pub read_retries: u32,
    /// Longest wait for a new session to reach `running`.
    pub session_start_timeout_s: u64,
}

impl Default for KasmConfig {
    fn default() -> Self {
        Self {
            api_url: None,
            api_key: None,
            api_secret: None,
            user_id: None,
            verify_tls: true,
            ca_bundle: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            read_retries: 2,
            session_start_timeout_s: 300,
        }
    }
}

/// Bearer-token principals.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub tokens: Vec<TokenConfig>,
    /// Serve without authentication. Refused unless the listener is on loopback
    /// (used for the MCP conformance suite, which cannot send a token).
    pub disabled: bool,
}

/// One named token, stored only as its SHA-256 hex digest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub sha256: String,
    #[serde(default = "default_role")]
    pub role: String,
    /// Kasm user this principal acts as (defaults to `kasm.user_id`).
    #[serde(default)]
    pub kasm_user_id: Option<String>,
}

fn default_role() -> String {
    "operator".into()
}

/// Request-rate limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per second per client IP, before authentication.
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    /// Tool calls per minute per principal.
    pub per_principal_per_minute: u32,
    pub per_principal_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            per_ip_per_second: 50,
            per_ip_burst: 100,
            per_principal_per_minute: 600,
            per_principal_burst: 60,
        }
    }
}

/// What tools may do inside sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Absolute directories inside sessions that file tools may touch.
    pub allowed_roots: Vec<String>,
    /// Default and maximum command timeout.
    pub default_timeout_s: u64,
    pub max_timeout_s: u64,
    /// Default and maximum bytes of stdout (and, separately, stderr) returned.
    pub default_max_output_bytes: usize,
    pub max_output_bytes: usize,
    /// Largest file read or written through the relay.
    pub max_file_bytes: usize,
    /// Container users `execute_kasm_command` may run as (`user` argument). Empty: only the
    /// image's default user (the argument is refused).
    pub allowed_exec_users: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            allowed_roots: vec!["/home/kasm-user".into()],
            default_timeout_s: 60,
            max_timeout_s: 600,
            default_max_output_bytes: 64 * 1024,
            max_output_bytes: 1024 * 1024,
            max_file_bytes: 16 * 1024 * 1024,
            allowed_exec_users: Vec::new(),
        }
    }
}

/// A configuration problem, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not load configuration: {0}")]
    Load(String),
    #[error("invalid configuration: {key} = {value:?}: {fix}")]
    Invalid {
        key: &'static str,
        value: String,
        fix: String,
    },
}

fn invalid(key: &'static str, value: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.into(),
        fix: fix.into(),
    }
}

/// The original product's environment variable names → configuration keys.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("KASM_API_URL", "kasm.api_url"),
    ("KASM_API_KEY", "kasm.api_key"),
    ("KASM_API_SECRET", "kasm.api_secret"),
    ("KASM_USER_ID", "kasm.user_id"),
    ("KASM_VERIFY_TLS", "kasm.verify_tls"),
    ("KASM_CA_BUNDLE", "kasm.ca_bundle"),
    ("MCP_SERVER_HOST", "server.host"),
    ("MCP_SERVER_PORT", "server.port"),
    ("MCP_RELAY_URL", "server.relay_url"),
    ("MCP_ALLOWED_HOSTS", "server.allowed_hosts"),
    ("MCP_ALLOWED_ORIGINS", "server.allowed_origins"),
    ("ALLOWED_ROOTS", "policy.allowed_roots"),
];

/// Keys whose environment value is taken verbatim as a string, never type-guessed: a secret or
/// id that happens to look like a number, a bool or an array must still load, and figment's
/// "invalid type: found …" error would quote it on stderr.
const STRING_KEYS: &[&str] = &[
    "kasm.api_url",
    "kasm.api_key",
    "kasm.api_secret",
    "kasm.user_id",
    "kasm.ca_bundle",
    "server.host",
    "server.relay_url",
    "server.session_secret",
];

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "server.allowed_hosts",
    "server.allowed_origins",
    "policy.allowed_roots",
];

impl Config {
    /// Load from defaults, the given file (or `config/kasm-mcp.toml` if present), and the
    /// process environment, then validate.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// [`Config::load`] with an explicit environment (tests).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(ServerDefaults::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Load(format!(
                        "configuration file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.exists() {
                    figment = figment.merge(Toml::file(default));
                }
            }
        }
        for (var, key) in ENV_ALIASES {
            if let Some((_, value)) = env.iter().find(|(k, _)| k == var) {
                figment = figment.merge(Serialized::global(key, env_value(key, value)));
            }
        }
        let prefixed: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with("KASM_MCP_"))
            .cloned()
            .collect();
        for (var, value) in prefixed {
            let key = var["KASM_MCP_".len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            if key.is_empty() {
                continue;
            }
            figment = figment.merge(Serialized::global(&key, env_value(&key, &value)));
        }
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(describe_figment_error(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Check every value that can be checked without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.host.parse::<IpAddr>().is_err() && s.host != "localhost" {
            return Err(invalid(
                "server.host (MCP_SERVER_HOST)",
                &s.host,
                "use an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0",
            ));
        }
        if s.max_body_bytes < 1024 {
            return Err(invalid(
                "server.max_body_bytes",
                s.max_body_bytes.to_string(),
                "use at least 1024 bytes",
            ));
        }
        if let Some(relay) = &s.relay_url {
            check_http_url("server.relay_url (MCP_RELAY_URL)", relay)?;
        }
        if self.auth.disabled && !self.listens_on_loopback() {
            return Err(invalid(
                "auth.disabled",
                "true",
                format!(
                    "authentication may only be switched off on a loopback listener, but server.host is {}",
                    s.host
                ),
            ));
        }
        let k = &self.kasm;
        if let Some(url) = &k.api_url {
            check_http_url("kasm.api_url (KASM_API_URL)", url)?;
        }
        if let Some(user) = &k.user_id {
            crate::kasm::normalize_id("kasm.user_id", user).map_err(|_| {
                invalid(
                    "kasm.user_id (KASM_USER_ID)",
                    user,
                    "use the Kasm user's UUID (Admin → Users → the user)",
                )
            })?;
        }
        if let Some(ca) = k.ca_bundle.as_ref().filter(|ca| !ca.is_file()) {
            return Err(invalid(
                "kasm.ca_bundle (KASM_CA_BUNDLE)",
                ca.display().to_string(),
                "point it at a readable PEM file with the CA certificates to trust",
            ));
        }
        if k.connect_timeout_ms == 0 || k.request_timeout_ms == 0 {
            return Err(invalid(
                "kasm.connect_timeout_ms / kasm.request_timeout_ms",
                format!("{} / {}", k.connect_timeout_ms, k.request_timeout_ms),
                "timeouts must be greater than zero",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for token in &self.auth.tokens {
            if !names.insert(token.name.as_str()) {
                return Err(invalid(
                    "auth.tokens[].name",
                    &token.name,
                    "token names must be unique: the name is the principal's identity (rate \
                     limits, session ids, cancellation, audit), so give each [[auth.tokens]] \
                     entry its own name",
                ));
            }
            let digest_ok =
                token.sha256.len() == 64 && token.sha256.chars().all(|c| c.is_ascii_hexdigit());
            if !digest_ok {
                return Err(invalid(
                    "auth.tokens[].sha256",
                    format!("{} (token {:?})", token.sha256, token.name),
                    "store the token's SHA-256 hex digest (64 hex digits): run `kasm-mcp hash-key`",
                ));
            }
            if !["viewer", "operator", "admin"].contains(&token.role.as_str()) {
                return Err(invalid(
                    "auth.tokens[].role",
                    format!("{} (token {:?})", token.role, token.name),
                    "use one of viewer, operator, admin",
                ));
            }
            if let Some(user) = &token.kasm_user_id {
                crate::kasm::normalize_id("kasm_user_id", user).map_err(|_| {
                    invalid(
                        "auth.tokens[].kasm_user_id",
                        user,
                        "use the Kasm user's UUID",
                    )
                })?;
            }
        }
        let p = &self.policy;
        if p.allowed_roots.is_empty() {
            return Err(invalid(
                "policy.allowed_roots (ALLOWED_ROOTS)",
                "",
                "name at least one absolute directory, e.g. /home/kasm-user",
            ));
        }
        for root in &p.allowed_roots {
            if !root.starts_with('/') || root.split('/').any(|c| c == "..") || root.contains('\0') {
                return Err(invalid(
                    "policy.allowed_roots (ALLOWED_ROOTS)",
                    root,
                    "each root must be an absolute path without `..`, e.g. /home/kasm-user",
                ));
            }
        }
        if p.default_timeout_s == 0 || p.default_timeout_s > p.max_timeout_s {
            return Err(invalid(
                "policy.default_timeout_s",
                p.default_timeout_s.to_string(),
                format!("use 1..={} (policy.max_timeout_s)", p.max_timeout_s),
            ));
        }
        if p.default_max_output_bytes == 0 || p.default_max_output_bytes > p.max_output_bytes {
            return Err(invalid(
                "policy.default_max_output_bytes",
                p.default_max_output_bytes.to_string(),
                format!("use 1..={} (policy.max_output_bytes)", p.max_output_bytes),
            ));
        }
        Ok(())
    }

    /// Whether the configured listen address is a loopback address.
    pub fn listens_on_loopback(&self) -> bool {
        self.server.host == "localhost"
            || self
                .server
                .host
                .parse::<IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }

    /// Names of the non-admin tokens that have no `kasm_user_id`, when there are two or more.
    /// They all act as `kasm.user_id` and so can see, exec in and destroy each other's sessions;
    /// `serve` warns about this at start-up (it is allowed: one shared user may be intended).
    pub fn shared_user_principals(&self) -> Vec<&str> {
        let sharing: Vec<&str> = self
            .auth
            .tokens
            .iter()
            .filter(|t| t.role != "admin" && t.kasm_user_id.is_none())
            .map(|t| t.name.as_str())
            .collect();
        if sharing.len() > 1 {
            sharing
        } else {
            Vec::new()
        }
    }

    /// The names of the Kasm settings `serve` needs that are missing.
    pub fn missing_kasm_settings(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.kasm.api_url.is_none() {
            missing.push("KASM_API_URL");
        }
        if self.kasm.api_key.is_none() {
            missing.push("KASM_API_KEY");
        }
        if self.kasm.api_secret.is_none() {
            missing.push("KASM_API_SECRET");
        }
        missing
    }
}

/// Defaults in a serializable shape (secrets have no defaults).
#[derive(Serialize, Default)]
struct ServerDefaults {
    server: ServerConfig,
    limits: LimitsConfig,
    policy: PolicyConfig,
}

fn env_value(key: &str, raw: &str) -> figment::value::Value {
    use figment::value::Value;
    if LIST_KEYS.contains(&key) {
        let items: Vec<Value> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::from(s.to_string()))
            .collect();
        return Value::from(items);
    }
    if STRING_KEYS.contains(&key) {
        return Value::from(raw.to_string());
    }
    // Let figment's own parser turn "8080" into a number and "false" into a bool.
    raw.parse::<figment::value::Value>()
        .unwrap_or_else(|_| Value::from(raw.to_string()))
}

fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid(
            key,
            value,
            "use an absolute http:// or https:// URL, e.g. https://kasm.example.com",
        )),
    }
}

fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let path = e.path.join(".");
            if path.is_empty() {
                e.kind.to_string()
            } else {
                format!("{path}: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let c = Config::load_from(Some(Path::new("/nonexistent")), &[]);
        assert!(c.is_err(), "a named file that is missing is an error");
        let c = Config::load_from(None, &[]).unwrap();
        assert_eq!(c.server.port, 8080);
        assert!(c.listens_on_loopback());
        assert_eq!(c.policy.allowed_roots, vec!["/home/kasm-user".to_string()]);
        assert!(c.kasm.verify_tls);
    }

    #[test]
    fn original_env_names_apply() {
        let c = Config::load_from(
            None,
            &env(&[
                ("KASM_API_URL", "https://kasm.example.com"),
                ("KASM_API_KEY", "k"),
                ("KASM_API_SECRET", "s"),
                ("MCP_SERVER_PORT", "9000"),
                ("ALLOWED_ROOTS", "/home/kasm-user, /tmp/work"),
                ("KASM_VERIFY_TLS", "false"),
                ("KASM_MCP_LIMITS__PER_IP_BURST", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.port, 9000);
        assert_eq!(c.policy.allowed_roots, vec!["/home/kasm-user", "/tmp/work"]);
        assert!(!c.kasm.verify_tls);
        assert_eq!(c.limits.per_ip_burst, 7);
        assert!(c.missing_kasm_settings().is_empty());
    }

    #[test]
    fn bad_values_name_key_value_and_fix() {
        let err = Config::load_from(None, &env(&[("MCP_SERVER_PORT", "eighty")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.port"), "{err}");
        let err = Config::load_from(None, &env(&[("KASM_API_URL", "kasm.local")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("KASM_API_URL") && err.contains("kasm.local") && err.contains("http"),
            "{err}"
        );
        let err = Config::load_from(None, &env(&[("ALLOWED_ROOTS", "relative/dir")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ALLOWED_ROOTS") && err.contains("absolute"),
            "{err}"
        );
        let err = Config::load_from(None, &env(&[("KASM_USER_ID", "bob")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("KASM_USER_ID") && err.contains("bob"), "{err}");
    }

    #[test]
    fn auth_off_only_on_loopback() {
        let err = Config::load_from(
            None,
            &env(&[
                ("MCP_SERVER_HOST", "0.0.0.0"),
                ("KASM_MCP_AUTH__DISABLED", "true"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("auth.disabled"), "{err}");
        assert!(Config::load_from(None, &env(&[("KASM_MCP_AUTH__DISABLED", "true")])).is_ok());
    }

    fn token(name: &str, role: &str, kasm_user_id: Option<&str>) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            sha256: "a".repeat(64),
            role: role.into(),
            kasm_user_id: kasm_user_id.map(str::to_owned),
        }
    }

    #[test]
    fn token_names_must_be_unique() {
        let mut c = Config::default();
        c.auth.tokens = vec![token("ops", "operator", None), token("ops", "viewer", None)];
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("auth.tokens[].name") && err.contains("\"ops\"") && err.contains("unique"),
            "{err}"
        );
        c.auth.tokens[1].name = "ops2".into();
        c.validate().unwrap();
    }

    #[test]
    fn shared_kasm_user_principals_are_reported_not_refused() {
        let uid = "0123456789abcdef0123456789abcdef";
        let mut c = Config::default();
        c.auth.tokens = vec![
            token("a", "operator", None),
            token("root", "admin", None),
            token("own", "operator", Some(uid)),
        ];
        assert!(
            c.shared_user_principals().is_empty(),
            "one sharer is no sharing"
        );
        c.auth.tokens.push(token("b", "viewer", None));
        c.validate().unwrap();
        assert_eq!(c.shared_user_principals(), vec!["a", "b"]);
    }

    #[test]
    fn string_keys_from_env_are_never_type_guessed() {
        let c = Config::load_from(
            None,
            &env(&[
                ("KASM_API_URL", "https://kasm.example.com"),
                ("KASM_API_KEY", "1234567890"),
                ("KASM_API_SECRET", "12345678901234567890123456789012"),
                ("KASM_USER_ID", "01234567890123456789012345678901"),
                ("KASM_MCP_SERVER__SESSION_SECRET", "1e10"),
            ]),
        )
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(c.kasm.api_key.unwrap().expose_secret(), "1234567890");
        assert_eq!(
            c.kasm.api_secret.unwrap().expose_secret(),
            "12345678901234567890123456789012"
        );
        assert_eq!(
            c.kasm.user_id.as_deref(),
            Some("01234567890123456789012345678901")
        );
        assert_eq!(c.server.session_secret.unwrap().expose_secret(), "1e10");
        // A non-string key is still type-checked, and a bad secret-free value is still named.
        let err = Config::load_from(
            None,
            &env(&[("KASM_API_SECRET", "true"), ("MCP_SERVER_PORT", "x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("server.port") && !err.contains("api_secret"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_example_file_loads_and_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kasm-mcp.example.toml");
        let c = Config::load_from(Some(&example), &[]).unwrap();
        let d = Config::load_from(None, &[]).unwrap();
        assert_eq!(c.server.port, d.server.port);
        assert_eq!(c.server.max_body_bytes, d.server.max_body_bytes);
        assert_eq!(c.policy.allowed_roots, d.policy.allowed_roots);
        assert_eq!(c.policy.max_file_bytes, d.policy.max_file_bytes);
        assert_eq!(c.limits.per_ip_burst, d.limits.per_ip_burst);
        assert_eq!(c.kasm.request_timeout_ms, d.kasm.request_timeout_ms);
        assert!(!c.auth.disabled && c.auth.tokens.is_empty());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c =
            Config::load_from(None, &env(&[("KASM_API_SECRET", "hunter2-very-secret")])).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let c = Config::load_from(
            None,
            &env(&[("KASM_MCP_SERVER__SESSION_SECRET", "sealing-key-hunter3")]),
        )
        .unwrap();
        assert!(c.server.session_secret.is_some());
        let dbg = format!("{c:?} {:?}", c.server);
        assert!(!dbg.contains("hunter3"), "{dbg}");
    }
}
