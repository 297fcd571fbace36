//! Bad credentials and missing permissions on every endpoint; impersonation and read-only keys.

use std::collections::BTreeSet;

use kasm_mcp::kasm::permissions::{ENDPOINTS, names};
use kasm_mcp::kasm::{KasmApi, KasmError, RequestKasm};
use kasm_mcp::simulator::SimulatorConfig;

use super::support::*;

#[tokio::test]
async fn every_endpoint_reports_a_wrong_secret_as_bad_credentials() {
    let sim = simulator(SimulatorConfig::default()).await;
    let api = client_at(&sim.base_url(), sim.api_key(), "wrong-secret", options());
    let results = every_endpoint(&api, NO_SUCH_KASM, &sim.default_user_id()).await;
    let called: BTreeSet<&str> = results.iter().map(|(name, _)| *name).collect();
    let all: BTreeSet<&str> = ENDPOINTS.iter().map(|e| e.name).collect();
    assert_eq!(called, all, "the table must call every endpoint");
    for (name, result) in results {
        assert!(
            matches!(result, Err(KasmError::BadCredentials)),
            "{name}: {result:?}"
        );
    }
    sim.shutdown().await;
}

async fn assert_missing_permissions_named(missing_permission_status: u16) {
    let sim = simulator(SimulatorConfig {
        missing_permission_status,
        extra_keys: vec![key("nothing", &[], false)],
        ..SimulatorConfig::default()
    })
    .await;
    let api = keyed_client(&sim, "nothing");
    for (name, result) in every_endpoint(&api, NO_SUCH_KASM, &sim.default_user_id()).await {
        let needed = kasm_mcp::kasm::permissions::endpoint(name)
            .unwrap()
            .permission;
        match result {
            Err(KasmError::MissingPermission {
                endpoint,
                permission,
                ..
            }) => {
                assert_eq!((endpoint, permission), (name, needed));
            }
            other => panic!("{name} (HTTP {missing_permission_status}): {other:?}"),
        }
    }
    let text = api.get_kasms().await.unwrap_err().to_string();
    assert!(text.contains("Sessions View"), "{text}");
    sim.shutdown().await;
}

#[tokio::test]
async fn every_endpoint_names_the_missing_permission_on_401() {
    assert_missing_permissions_named(401).await;
}

#[tokio::test]
async fn every_endpoint_names_the_missing_permission_on_403_as_1_19() {
    assert_missing_permissions_named(403).await;
}

#[tokio::test]
async fn impersonation_and_read_only_keys() {
    let sim = simulator(SimulatorConfig {
        extra_keys: vec![
            key("user-only", &[names::USER], false),
            key("reader", &[names::GLOBAL_ADMIN, names::USER], true),
        ],
        ..SimulatorConfig::default()
    })
    .await;
    let user = sim.default_user_id();
    let request = RequestKasm {
        user_id: Some(user.clone()),
        ..RequestKasm::default()
    };
    let err = keyed_client(&sim, "user-only")
        .request_kasm(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KasmError::MissingPermission { permission, .. } if permission == names::USERS_AUTH_SESSION),
        "{err:?}"
    );
    let reader = keyed_client(&sim, "reader");
    assert!(!reader.get_images().await.unwrap().is_empty());
    let err = reader.request_kasm(&request).await.unwrap_err();
    assert!(
        matches!(err, KasmError::MissingPermission { .. }),
        "{err:?}"
    );
    sim.shutdown().await;
}
