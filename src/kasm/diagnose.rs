//! Which Kasm API-key permissions work, found with calls that change nothing.
//!
//! Used by `kasm-mcp check` and by a diagnostic tool. Each probe calls one endpoint in a way
//! that has no side effect (reads, or session calls on the all-zero kasm id, which matches no
//! session). Kasm checks permissions before anything else, so a "missing permission" answer
//! means the permission is missing and any other answer (even "not found") means it is there.

use serde::Serialize;

use super::permissions::names;
use super::{ExecConfig, KasmApi, KasmError, UserRef};

/// A kasm id that matches no session (Kasm needs a UUID, so "nonexistent" is all zeros).
pub const NO_SUCH_KASM: &str = "00000000000000000000000000000000";

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// Kasm got past its permission check.
    Granted,
    /// Kasm said the key lacks the permission.
    Missing,
    /// The probe could not tell (Kasm failed in another way).
    Unknown,
}

/// One probe call and its result.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Probe {
    /// The endpoint called.
    pub call: &'static str,
    /// The permissions the call needs.
    pub permissions: Vec<&'static str>,
    pub outcome: ProbeOutcome,
    /// The missing permission, when `outcome` is `missing`.
    pub missing: Option<&'static str>,
    /// What Kasm answered, in words.
    pub detail: String,
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Reachable, credentials valid, every probed permission present.
    Ok,
    /// Reachable with valid credentials, but some permissions are missing.
    MissingPermissions,
    /// Kasm rejected the key itself (wrong, expired, or API not licensed).
    BadCredentials,
    /// Kasm could not be reached or did not answer like Kasm.
    Unreachable,
}

/// Everything `diagnose_permissions` found, ready to print or to return as JSON.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PermissionReport {
    pub verdict: Verdict,
    /// The fatal problem (unreachable / bad credentials), in plain words.
    pub problem: Option<String>,
    pub probes: Vec<Probe>,
    /// Permissions the key lacks (deduplicated, in probe order).
    pub missing: Vec<&'static str>,
    /// Permissions shown to work.
    pub granted: Vec<&'static str>,
    /// What to do next.
    pub advice: Vec<String>,
}

impl PermissionReport {
    /// Kasm answered and accepted the key (some permissions may still be missing).
    pub fn credentials_ok(&self) -> bool {
        matches!(self.verdict, Verdict::Ok | Verdict::MissingPermissions)
    }
}

/// Probes made so far and advice collected on the way.
#[derive(Default)]
struct Probing {
    probes: Vec<Probe>,
    advice: Vec<String>,
}

/// A problem that makes further probes pointless.
type Fatal = (Verdict, String);

impl Probing {
    /// Record one probe; a fatal answer (unreachable, bad credentials) stops the run.
    fn record(
        &mut self,
        call: &'static str,
        permissions: Vec<&'static str>,
        result: Result<(), KasmError>,
    ) -> Result<(), Fatal> {
        let (outcome, missing, detail) = match result {
            Ok(()) => (ProbeOutcome::Granted, None, "works".to_string()),
            Err(KasmError::MissingPermission { permission, .. }) => (
                ProbeOutcome::Missing,
                Some(permission),
                format!("Kasm refused: the key lacks {permission:?}"),
            ),
            Err(
                e @ (KasmError::BadCredentials | KasmError::KeyExpired | KasmError::NotLicensed),
            ) => {
                return Err((Verdict::BadCredentials, e.to_string()));
            }
            Err(
                e @ (KasmError::Connect { .. }
                | KasmError::Timeout { .. }
                | KasmError::NotJson { .. }
                | KasmError::Redirect { .. }),
            ) => return Err((Verdict::Unreachable, e.to_string())),
            Err(e @ KasmError::Http { .. }) => (ProbeOutcome::Unknown, None, e.to_string()),
            Err(other) => (
                ProbeOutcome::Granted,
                None,
                format!("permitted (Kasm answered: {other})"),
            ),
        };
        self.probes.push(Probe {
            call,
            permissions,
            outcome,
            missing,
            detail,
        });
        Ok(())
    }
}

async fn run_probes(
    api: &dyn KasmApi,
    user_id: Option<&str>,
    run: &mut Probing,
) -> Result<(), Fatal> {
    let acting = |base: &'static str| match user_id {
        Some(_) => vec![base, names::USERS_AUTH_SESSION],
        None => vec![base],
    };
    let images = api.get_images().await.map(drop);
    run.record("get_images", vec![names::IMAGES_VIEW], images)?;
    let kasms = api.get_kasms().await.map(drop);
    run.record("get_kasms", vec![names::SESSIONS_VIEW], kasms)?;
    let users = api.get_users().await.map(drop);
    run.record("get_users", vec![names::USERS_VIEW], users)?;
    if let Some(user) = user_id {
        let me = api.get_user(&UserRef::Id(user.to_string())).await;
        if let Err(KasmError::NotFound { .. } | KasmError::InvalidArgument(_)) = &me {
            run.advice.push(format!(
                "Kasm has no user {user:?} (kasm.user_id / KASM_USER_ID): use the UUID shown under Admin → Users"
            ));
        }
        run.record("get_user", vec![names::USERS_VIEW], me.map(drop))?;
    }
    let status = api.get_kasm_status(NO_SUCH_KASM, user_id).await.map(drop);
    run.record("get_kasm_status", acting(names::USER), status)?;
    let true_cmd = ExecConfig {
        cmd: "true".into(),
        ..ExecConfig::default()
    };
    let exec = api
        .exec_command_kasm(NO_SUCH_KASM, user_id, &true_cmd)
        .await;
    run.record("exec_command_kasm", acting(names::SESSIONS_MODIFY), exec)
}

/// Probe the key's permissions without side effects. `user_id` is the Kasm user the server
/// acts as (`kasm.user_id`); with it, the impersonation permission is probed too.
pub async fn diagnose_permissions(api: &dyn KasmApi, user_id: Option<&str>) -> PermissionReport {
    let mut run = Probing::default();
    match run_probes(api, user_id, &mut run).await {
        Ok(()) => summarise(run, user_id.is_some()),
        Err((verdict, problem)) => {
            run.advice.push(match verdict {
                Verdict::Unreachable => "check KASM_API_URL (the Kasm server's base URL, e.g. https://kasm.example.com), the network path and TLS settings (KASM_VERIFY_TLS, KASM_CA_BUNDLE)".into(),
                _ => "check KASM_API_KEY and KASM_API_SECRET against Settings → Developers → API Keys in the Kasm admin UI (and the key's expiry)".into(),
            });
            PermissionReport {
                verdict,
                problem: Some(problem),
                probes: run.probes,
                missing: Vec::new(),
                granted: Vec::new(),
                advice: run.advice,
            }
        }
    }
}

fn summarise(run: Probing, acting_as_user: bool) -> PermissionReport {
    let Probing { probes, mut advice } = run;
    let mut missing: Vec<&'static str> = Vec::new();
    let mut granted: Vec<&'static str> = Vec::new();
    for probe in &probes {
        match probe.outcome {
            ProbeOutcome::Missing => {
                if let Some(p) = probe.missing.filter(|p| !missing.contains(p)) {
                    missing.push(p);
                }
            }
            ProbeOutcome::Granted => {
                for p in &probe.permissions {
                    if !granted.contains(p) {
                        granted.push(p);
                    }
                }
            }
            ProbeOutcome::Unknown => {}
        }
    }
    granted.retain(|p| !missing.contains(p));
    if !missing.is_empty() {
        advice.push(format!(
            "grant {} to the API key: Kasm admin UI → Settings → Developers → the key → Permissions (note: Global Admin does not include \"User\")",
            missing.join(", ")
        ));
    }
    if !acting_as_user {
        advice.push(
            "kasm.user_id (KASM_USER_ID) is not set: sessions would be created for anonymous users, which the API cannot manage afterwards; set it to the Kasm user the server acts as"
                .into(),
        );
    }
    PermissionReport {
        verdict: if missing.is_empty() {
            Verdict::Ok
        } else {
            Verdict::MissingPermissions
        },
        problem: None,
        probes,
        missing,
        granted,
        advice,
    }
}
