//! Loading: built-in defaults < the TOML file < the environment (the original product's names
//! and `KASM_MCP_<SECTION>__<KEY>`), then [`Config::validate`].

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Serialize;

use super::errors::ConfigError;
use super::{
    Config, DEFAULT_CONFIG_FILE, LifecycleConfig, LimitsConfig, PolicyConfig, ServerConfig,
};

/// The original product's environment variable names → configuration keys.
pub(super) const ENV_ALIASES: &[(&str, &str)] = &[
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
    "oauth.issuer",
    "oauth.resource",
    "oauth.discovery_url",
    "oauth.jwks_uri",
    "oauth.kasm_user_id_claim",
    "oauth.kasm_username_claim",
    "oauth.introspection_endpoint",
    "oauth.introspection_client_id",
    "oauth.introspection_client_secret",
    "cluster.redis_url",
    "cluster.key_prefix",
    "cluster.replica_id",
];

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "server.allowed_hosts",
    "server.allowed_origins",
    "policy.allowed_roots",
    "oauth.algorithms",
    "oauth.challenge_scopes",
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
        let mut figment = Figment::from(Serialized::defaults(SerializableDefaults::default()));
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
}

/// The first layer of the figment: the sections whose defaults serialize (the others have
/// none that must be spelled out, or hold secrets, which have no defaults).
#[derive(Serialize, Default)]
struct SerializableDefaults {
    server: ServerConfig,
    limits: LimitsConfig,
    policy: PolicyConfig,
    lifecycle: LifecycleConfig,
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
