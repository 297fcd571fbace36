//! Permission diagnosis and the `kasm-mcp check` command as a real process, including its logs.

use std::collections::BTreeSet;

use kasm_mcp::kasm::diagnose::{ProbeOutcome, Verdict, diagnose_permissions};
use kasm_mcp::kasm::permissions::names;
use kasm_mcp::simulator::SimulatorConfig;

use super::support::*;

#[tokio::test]
async fn diagnosis_names_missing_permissions() {
    let sim = simulator(SimulatorConfig {
        extra_keys: vec![key(
            "partial",
            &[names::IMAGES_VIEW, names::SESSIONS_VIEW, names::USER],
            false,
        )],
        ..SimulatorConfig::default()
    })
    .await;
    let user = sim.default_user_id();

    let full = diagnose_permissions(&client(&sim), Some(&user)).await;
    assert_eq!(full.verdict, Verdict::Ok, "{full:#?}");
    assert!(full.missing.is_empty());
    assert_eq!(full.probes.len(), 6);

    let partial = diagnose_permissions(&keyed_client(&sim, "partial"), Some(&user)).await;
    assert_eq!(partial.verdict, Verdict::MissingPermissions, "{partial:#?}");
    let missing: BTreeSet<&str> = partial.missing.iter().copied().collect();
    let want: BTreeSet<&str> = [
        names::USERS_VIEW,
        names::USERS_AUTH_SESSION,
        names::SESSIONS_MODIFY,
    ]
    .into();
    assert_eq!(missing, want, "{partial:#?}");
    assert!(partial.granted.contains(&names::IMAGES_VIEW));
    let images = partial
        .probes
        .iter()
        .find(|p| p.call == "get_images")
        .unwrap();
    assert_eq!(images.outcome, ProbeOutcome::Granted);
    // The report is serializable for a tool to return.
    let json = serde_json::to_value(&partial).unwrap();
    assert_eq!(json["verdict"], "missing_permissions");

    let wrong = client_at(&sim.base_url(), sim.api_key(), "nope", options());
    let bad = diagnose_permissions(&wrong, Some(&user)).await;
    assert_eq!(bad.verdict, Verdict::BadCredentials);
    assert!(!bad.credentials_ok());

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nowhere = client_at(&format!("http://{closed}"), "k", "s", options());
    let unreachable = diagnose_permissions(&nowhere, None).await;
    assert_eq!(unreachable.verdict, Verdict::Unreachable);
    assert!(
        unreachable
            .problem
            .unwrap()
            .contains("could not reach Kasm")
    );
    sim.shutdown().await;
}

/// Run `kasm-mcp check` as a real process with only the given environment.
async fn run_check(env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kasm-mcp"))
        .arg("check")
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn check_command_reports_and_fails_on_bad_credentials() {
    let sim = simulator(SimulatorConfig::default()).await;
    let url = sim.base_url();
    let user = sim.default_user_id();
    let (ok, text) = run_check(&[
        ("KASM_API_URL", &url),
        ("KASM_API_KEY", sim.api_key()),
        ("KASM_API_SECRET", sim.api_secret()),
        ("KASM_USER_ID", &user),
    ])
    .await;
    assert!(ok, "{text}");
    assert!(
        text.contains("every probed permission is present"),
        "{text}"
    );
    assert!(!text.contains(sim.api_secret()), "secret printed: {text}");

    let (ok, text) = run_check(&[
        ("KASM_API_URL", &url),
        ("KASM_API_KEY", sim.api_key()),
        ("KASM_API_SECRET", "wrong-secret-value"),
    ])
    .await;
    assert!(!ok, "{text}");
    assert!(text.contains("Kasm rejected the API key"), "{text}");
    assert!(
        !text.contains("wrong-secret-value"),
        "secret printed: {text}"
    );

    let (ok, text) = run_check(&[]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("KASM_API_URL"), "{text}");
    sim.shutdown().await;
}

#[tokio::test]
async fn trace_logs_carry_spans_but_never_the_secret() {
    // A real process with everything logged (reqwest and hyper included), through a proxy
    // whose first answer is a 502 so that a retry is logged too.
    let sim = simulator(SimulatorConfig::default()).await;
    let flaky = proxy(sim.base_url(), 1).await;
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kasm-mcp"))
        .arg("check")
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "trace")
        .env("KASM_API_URL", &flaky.url)
        .env("KASM_API_KEY", sim.api_key())
        .env("KASM_API_SECRET", sim.api_secret())
        .env("KASM_USER_ID", sim.default_user_id())
        .output()
        .await
        .unwrap();
    let logs = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{logs}");
    assert!(logs.contains("kasm_call{endpoint=\"get_images\""), "{logs}");
    assert!(
        logs.contains("status=200") && logs.contains("duration_ms="),
        "{logs}"
    );
    assert!(logs.contains("retrying"), "{logs}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for text in [logs.as_str(), &stdout] {
        assert!(
            !text.contains(sim.api_secret()),
            "the API secret was printed"
        );
    }
    sim.shutdown().await;
}

/// Log text without terminal colour codes (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
