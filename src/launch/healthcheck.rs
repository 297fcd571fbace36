//! `kasm-mcp healthcheck`: one GET of `/healthz` (or `/readyz`) on the configured port of this
//! machine, for container health checks (the runtime image then needs no curl). Exit 0 on
//! HTTP 200, 1 otherwise, with one line saying why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use super::runtime::run_async;
use crate::config::Config;

/// `kasm-mcp healthcheck`: load the configuration (file and environment, as `serve` does),
/// probe, print one line; true on HTTP 200.
pub fn run(config_file: Option<&Path>, ready: bool, timeout: Duration) -> bool {
    let config = match Config::load(config_file) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kasm-mcp healthcheck: {e}");
            return false;
        }
    };
    let url = probe_url(&config, ready);
    match run_async("healthcheck", healthcheck(&url, timeout)) {
        Some(body) => {
            println!("{url}: {body}");
            true
        }
        None => false,
    }
}

/// Why the health check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("{url}: no answer ({0}); is kasm-mcp running and listening on this port?", url = .1)]
    Unreachable(String, String),
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The URL to probe: `server.host` (an unspecified address becomes loopback) and
/// `server.port`, path `/healthz` or, with `ready`, `/readyz`.
pub fn probe_url(config: &Config, ready: bool) -> String {
    let host = match config.server.host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        Ok(IpAddr::V4(ip)) => ip.to_string(),
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() => format!("[{}]", Ipv6Addr::LOCALHOST),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        Err(_) => config.server.host.clone(),
    };
    let path = if ready { "readyz" } else { "healthz" };
    format!("http://{host}:{}/{path}", config.server.port)
}

/// GET `url`; `Ok` with the body on HTTP 200.
pub async fn healthcheck(url: &str, timeout: Duration) -> Result<String, HealthcheckError> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| HealthcheckError::Client(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| HealthcheckError::Unreachable(e.to_string(), url.to_owned()))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(500).collect();
    if status == 200 {
        Ok(body)
    } else {
        Err(HealthcheckError::Status {
            url: url.to_owned(),
            status,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_hosts_become_loopback() {
        let mut config = Config::default();
        config.server.host = "0.0.0.0".into();
        config.server.port = 9000;
        assert_eq!(probe_url(&config, false), "http://127.0.0.1:9000/healthz");
        config.server.host = "::".into();
        assert_eq!(probe_url(&config, true), "http://[::1]:9000/readyz");
    }
}
