//! `kasm-mcp check`: print the effective configuration with secrets redacted, then reach Kasm
//! and explain in plain words what works and which API-key permissions are missing.

use std::io::Write;

use secrecy::SecretString;

use crate::config::{Config, DEFAULT_CONFIG_FILE};
use crate::kasm::KasmClient;
use crate::kasm::diagnose::{PermissionReport, ProbeOutcome, Verdict, diagnose_permissions};

fn secret(value: &Option<SecretString>) -> &'static str {
    if value.is_some() {
        "set (redacted)"
    } else {
        "NOT SET"
    }
}

fn opt<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "not set".into())
}

/// The effective configuration as `key = value` lines, secrets redacted.
pub fn render_config(config: &Config) -> String {
    let s = &config.server;
    let k = &config.kasm;
    let p = &config.policy;
    let l = &config.limits;
    let mut lines = vec![
        ("server.host", s.host.clone()),
        ("server.port", s.port.to_string()),
        ("server.allowed_hosts", format!("{:?}", s.allowed_hosts)),
        ("server.allowed_origins", format!("{:?}", s.allowed_origins)),
        ("server.max_body_bytes", s.max_body_bytes.to_string()),
        ("server.relay_url", opt(&s.relay_url)),
        ("server.sse_keep_alive_s", s.sse_keep_alive_s.to_string()),
        (
            "server.session_secret",
            if s.session_secret.is_some() {
                "set (redacted)".into()
            } else {
                "not set (random per process)".into()
            },
        ),
        ("kasm.api_url", opt(&k.api_url)),
        ("kasm.api_key", secret(&k.api_key).into()),
        ("kasm.api_secret", secret(&k.api_secret).into()),
        ("kasm.user_id", opt(&k.user_id)),
        ("kasm.verify_tls", k.verify_tls.to_string()),
        (
            "kasm.ca_bundle",
            opt(&k.ca_bundle.as_ref().map(|p| p.display().to_string())),
        ),
        ("kasm.connect_timeout_ms", k.connect_timeout_ms.to_string()),
        ("kasm.request_timeout_ms", k.request_timeout_ms.to_string()),
        ("kasm.read_retries", k.read_retries.to_string()),
        (
            "kasm.session_start_timeout_s",
            k.session_start_timeout_s.to_string(),
        ),
        ("auth.disabled", config.auth.disabled.to_string()),
        ("limits.per_ip_per_second", l.per_ip_per_second.to_string()),
        ("limits.per_ip_burst", l.per_ip_burst.to_string()),
        (
            "limits.per_principal_per_minute",
            l.per_principal_per_minute.to_string(),
        ),
        (
            "limits.per_principal_burst",
            l.per_principal_burst.to_string(),
        ),
        ("policy.allowed_roots", format!("{:?}", p.allowed_roots)),
        ("policy.default_timeout_s", p.default_timeout_s.to_string()),
        ("policy.max_timeout_s", p.max_timeout_s.to_string()),
        (
            "policy.default_max_output_bytes",
            p.default_max_output_bytes.to_string(),
        ),
        ("policy.max_output_bytes", p.max_output_bytes.to_string()),
        ("policy.max_file_bytes", p.max_file_bytes.to_string()),
    ];
    if config.auth.tokens.is_empty() {
        lines.push(("auth.tokens", "none".into()));
    }
    for token in &config.auth.tokens {
        let digest: String = token.sha256.to_hex().chars().take(8).collect();
        lines.push((
            "auth.tokens[]",
            format!(
                "name={:?} role={} sha256={digest}… kasm_user_id={}",
                token.name,
                token.role,
                opt(&token.kasm_user_id)
            ),
        ));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(key, value)| format!("  {key:<width$} = {value}\n"))
        .collect()
}

/// The permission report in plain words.
pub fn render_report(report: &PermissionReport) -> String {
    let mut out = String::new();
    for probe in &report.probes {
        let mark = match probe.outcome {
            ProbeOutcome::Granted => "ok     ",
            ProbeOutcome::Missing => "MISSING",
            ProbeOutcome::Unknown => "unknown",
        };
        out.push_str(&format!(
            "  [{mark}] {:<20} needs {:<40} {}\n",
            probe.call,
            probe.permissions.join(" + "),
            probe.detail
        ));
    }
    out.push('\n');
    match report.verdict {
        Verdict::Ok if report.probes.iter().any(|p| p.outcome == ProbeOutcome::Unknown) => {
            out.push_str("Result: Kasm is reachable and the API key is accepted; no permission is known to be missing, but some probes were inconclusive (see above).\n")
        }
        Verdict::Ok => out.push_str("Result: Kasm is reachable, the API key is accepted and every probed permission is present.\n"),
        Verdict::MissingPermissions => out.push_str(&format!(
            "Result: Kasm is reachable and the API key is accepted, but it lacks: {}.\n",
            report.missing.join(", ")
        )),
        Verdict::BadCredentials => out.push_str("Result: Kasm rejected the API key.\n"),
        Verdict::Unreachable => out.push_str("Result: Kasm could not be reached.\n"),
    }
    if let Some(problem) = &report.problem {
        out.push_str(&format!("Problem: {problem}\n"));
    }
    if !report.granted.is_empty() {
        out.push_str(&format!(
            "Working permissions: {}\n",
            report.granted.join(", ")
        ));
    }
    for line in &report.advice {
        out.push_str(&format!("Advice: {line}\n"));
    }
    out
}

/// Run the whole check, writing as it goes. Returns whether Kasm was reachable with valid
/// credentials (the exit status of `kasm-mcp check`).
/// Where the configuration came from, as the report's heading says it.
pub fn config_source(config_file: Option<&std::path::Path>) -> String {
    match config_file {
        Some(path) => format!("file {} + environment", path.display()),
        None if std::path::Path::new(DEFAULT_CONFIG_FILE).exists() => {
            format!("file {DEFAULT_CONFIG_FILE} + environment")
        }
        None => "defaults + environment".into(),
    }
}

pub async fn run_check(
    config: &Config,
    source: &str,
    out: &mut dyn Write,
) -> std::io::Result<bool> {
    writeln!(out, "Configuration ({source}), secrets redacted:")?;
    write!(out, "{}", render_config(config))?;
    writeln!(out)?;
    let missing = config.missing_kasm_settings();
    if !missing.is_empty() {
        writeln!(
            out,
            "Cannot reach Kasm: {} not set. Set them in the environment or in the [kasm] section of the configuration file.",
            missing.join(", ")
        )?;
        return Ok(false);
    }
    let client = match KasmClient::from_config(&config.kasm) {
        Ok(client) => client,
        Err(e) => {
            writeln!(out, "Cannot set up the Kasm client: {e}")?;
            return Ok(false);
        }
    };
    writeln!(
        out,
        "Probing Kasm at {} (calls without side effects)…",
        client.base_url()
    )?;
    out.flush()?;
    let report = diagnose_permissions(&client, config.kasm.user_id.as_deref()).await;
    write!(out, "{}", render_report(&report))?;
    Ok(report.credentials_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rendering_hides_secrets() {
        let env: Vec<(String, String)> = [
            ("KASM_API_URL", "https://kasm.example.com"),
            ("KASM_API_KEY", "key-abcdef-123"),
            ("KASM_API_SECRET", "secret-xyz-789"),
            ("KASM_MCP_SERVER__SESSION_SECRET", "hmac-key-456"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = Config::load_from(None, &env).unwrap();
        let text = render_config(&config);
        for secret in ["key-abcdef-123", "secret-xyz-789", "hmac-key-456"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("https://kasm.example.com"), "{text}");
        assert!(text.contains("kasm.api_secret"), "{text}");
    }
}
