//! The readiness probes behind `/readyz`. Kasm: one authenticated `get_images` call (the call
//! `get_available_workspaces` makes, needing only the Images View permission), classified into
//! "ready" or a reason with the fix. Credentials Kasm accepts but a permission it refuses still
//! count as ready: the server works, `kasm-mcp check` explains which tools are affected.
//! Redis (with `[cluster]`): a `PING` and this replica's pub/sub subscription.

use std::sync::Arc;

use crate::cluster::Cluster;
use crate::http::health::{DependencyProbe, Unready};
use crate::kasm::{KasmApi, KasmError};

/// Probes Kasm through the same client the tools use.
pub struct KasmProbe {
    kasm: Arc<dyn KasmApi>,
}

impl KasmProbe {
    pub fn new(kasm: Arc<dyn KasmApi>) -> KasmProbe {
        KasmProbe { kasm }
    }
}

fn unready(problem: &str, fix: &str) -> Unready {
    Unready {
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Ready (with a short state) or not (with the reason and fix) after a Kasm call ended so.
pub fn classify(outcome: Result<(), KasmError>) -> Result<String, Unready> {
    const CREDENTIALS: &str = "check KASM_API_KEY and KASM_API_SECRET against the key under Kasm Admin → Settings → Developers → API Keys";
    match outcome {
        Ok(()) => Ok("reachable, API key accepted".into()),
        Err(KasmError::MissingPermission { permission, .. }) => Ok(format!(
            "reachable, API key accepted (it lacks {permission}: run `kasm-mcp check`)"
        )),
        Err(KasmError::BadCredentials) => Err(unready(
            "Kasm rejected the API key or secret (HTTP 403 Access Denied)",
            CREDENTIALS,
        )),
        Err(KasmError::KeyExpired) => Err(unready(
            "the Kasm API key has expired",
            "create a new API key in Kasm (or extend its expiry) and set KASM_API_KEY / KASM_API_SECRET",
        )),
        Err(KasmError::NotLicensed) => Err(unready(
            "this Kasm installation is not licensed for the Developer API",
            "use a Kasm edition that includes the Developer API",
        )),
        Err(KasmError::Connect { .. } | KasmError::Timeout { .. }) => Err(unready(
            "Kasm is unreachable",
            "check that Kasm runs, KASM_API_URL (its base URL), the network path from this server, and TLS (KASM_VERIFY_TLS, KASM_CA_BUNDLE)",
        )),
        Err(KasmError::NotJson { .. } | KasmError::Decode { .. }) => Err(unready(
            "the server at KASM_API_URL does not answer like Kasm's API",
            "set KASM_API_URL to the Kasm server's base URL (without /api/public), not a proxy or login page",
        )),
        // `/readyz` is unauthenticated: its body never quotes upstream URLs. The Location
        // and the URL to configure go to the server log.
        Err(KasmError::Redirect {
            status,
            location,
            fix,
            ..
        }) => {
            tracing::warn!(status, %location, %fix, "the Kasm readiness probe was answered with a redirect (not followed)");
            Err(unready(
                &format!(
                    "Kasm answered the readiness probe with HTTP {status}, a redirect (redirects are not followed)"
                ),
                "set KASM_API_URL to the URL Kasm answers at without a redirect (the server log names it)",
            ))
        }
        Err(KasmError::Http { status, .. }) => Err(unready(
            &format!("Kasm answered the readiness probe with HTTP {status}"),
            "check Kasm's health (Admin → Diagnostics) and any proxy in front of it",
        )),
        // An authenticated answer that refused the request for another reason: Kasm is there
        // and accepts the key.
        Err(_) => Ok("reachable, API key accepted".into()),
    }
}

#[async_trait::async_trait]
impl DependencyProbe for KasmProbe {
    fn name(&self) -> &'static str {
        "kasm"
    }

    async fn probe(&self) -> Result<String, Unready> {
        classify(self.kasm.get_images().await.map(drop))
    }
}

/// Probes the shared state of `[cluster]`.
pub struct RedisProbe {
    cluster: Cluster,
}

impl RedisProbe {
    pub fn new(cluster: Cluster) -> RedisProbe {
        RedisProbe { cluster }
    }
}

#[async_trait::async_trait]
impl DependencyProbe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn probe(&self) -> Result<String, Unready> {
        self.cluster.check().await.map_err(|e| {
            tracing::warn!(error = %e, "redis readiness probe failed");
            unready(
                "Redis (the shared state of [cluster]) is unreachable",
                "check that Redis runs and that cluster.redis_url (host, port, password, TLS) is right; this replica reconnects by itself",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_reachability_are_told_apart() {
        let bad = classify(Err(KasmError::BadCredentials)).unwrap_err();
        assert!(bad.fix.contains("KASM_API_SECRET"), "{bad:?}");
        let down = classify(Err(KasmError::Connect {
            endpoint: "get_images",
            detail: "refused".into(),
        }))
        .unwrap_err();
        assert!(down.problem.contains("unreachable") && down.fix.contains("KASM_API_URL"));
        let redirected = classify(Err(KasmError::Redirect {
            endpoint: "get_images",
            status: 308,
            location: "https://kasm.example.com/api/public/get_images".into(),
            fix: "set KASM_API_URL to https://kasm.example.com".into(),
        }))
        .unwrap_err();
        // `/readyz` is unauthenticated: the redirect target stays in the server log.
        assert!(redirected.problem.contains("308"), "{redirected:?}");
        assert!(redirected.fix.contains("KASM_API_URL"), "{redirected:?}");
        assert!(
            !format!("{redirected:?}").contains("kasm.example.com"),
            "{redirected:?}"
        );
        assert!(
            classify(Err(KasmError::MissingPermission {
                endpoint: "get_images",
                permission: "Images View",
                message: String::new(),
            }))
            .is_ok()
        );
    }
}
