//! Transport behaviour: HTML from a wrong URL, timeouts against a hanging Kasm, read-only retries (and none for mutating calls), TLS verification and CA bundles.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kasm_mcp::kasm::{ExecConfig, KasmApi, KasmError, NewUser, RequestKasm, UserRef};
use kasm_mcp::simulator::{Faults, SimulatorConfig, TERMINAL_IMAGE_ID};
use serde_json::{Map, Value};

use super::support::*;

#[tokio::test]
async fn html_from_a_misconfigured_url_is_quoted() {
    let sim = simulator(SimulatorConfig::default()).await;
    // A proxy login page answering HTTP 200.
    let page = html_server().await;
    let api = client_at(&page, "k", "s", options());
    match api.get_images().await.unwrap_err() {
        KasmError::NotJson {
            status, snippet, ..
        } => {
            assert_eq!(status, 200);
            assert!(snippet.starts_with("<!DOCTYPE html>"), "{snippet}");
        }
        other => panic!("{other:?}"),
    }
    let err = api.get_kasm_status(NO_SUCH_KASM, None).await.unwrap_err();
    assert!(matches!(err, KasmError::NotJson { .. }), "{err:?}");
    let err = api
        .get_kasm_screenshot(NO_SUCH_KASM, None, 1, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, KasmError::Decode { .. }), "{err:?}");
    // The simulator under a wrong path prefix: CherryPy's 404 page.
    let wrong = client_at(
        &format!("{}/kasm", sim.base_url()),
        sim.api_key(),
        sim.api_secret(),
        options(),
    );
    let err = wrong.get_images().await.unwrap_err();
    assert!(
        matches!(&err, KasmError::NotJson { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("KASM_API_URL"), "{err}");
    sim.shutdown().await;
}

/// Credentials in KASM_API_URL (a proxy's basic auth: `https://user:pw@host`) go in an
/// `Authorization` header, as reqwest's request builder puts them, and out of the URL; no
/// error quotes them, nor credentials a redirect's `Location` carries.
#[tokio::test]
async fn credentials_in_the_kasm_url_are_sent_as_basic_auth_and_never_quoted() {
    let moved = redirector(
        StatusCode::PERMANENT_REDIRECT,
        "https://x:y@elsewhere.example",
    )
    .await;
    let with_credentials = moved.url.replacen("http://", "http://u:p@", 1);
    let api = client_at(&with_credentials, "k", "s", options());
    let err = api.get_images().await.unwrap_err();
    assert_eq!(moved.authorization().as_deref(), Some("Basic dTpw"));
    let text = format!("{err} {err:?}");
    assert!(matches!(err, KasmError::Redirect { .. }), "{text}");
    assert!(text.contains("elsewhere.example"), "{text}");
    assert!(!text.contains("u:p@") && !text.contains("x:y@"), "{text}");
}

/// A Kasm URL that redirects: every status of redirect is refused with the URL to configure
/// (the `Location` the redirect names, without `/api/public/<endpoint>`), never followed — the
/// request body carries the API key and secret — and never retried; the suggested URL works.
#[tokio::test]
async fn redirects_are_refused_with_the_url_to_configure_and_never_followed() {
    let sim = simulator(SimulatorConfig::default()).await;
    // Where every redirect points: counts what reaches it.
    let target = proxy(sim.base_url(), 0).await;
    for status in [301u16, 302, 303, 307, 308] {
        let moved = redirector(StatusCode::from_u16(status).unwrap(), &target.url).await;
        let api = client_at(&moved.url, sim.api_key(), sim.api_secret(), options());
        let calls: [(&str, Result<(), KasmError>); 3] = [
            (
                "get_kasm_status",
                api.get_kasm_status(NO_SUCH_KASM, None).await.map(drop),
            ),
            // A read the client retries on transient errors: a redirect is not one.
            ("get_images", api.get_images().await.map(drop)),
            (
                "request_kasm",
                api.request_kasm(&RequestKasm::default()).await.map(drop),
            ),
        ];
        for (endpoint, result) in calls {
            let err = result.unwrap_err();
            match &err {
                KasmError::Redirect {
                    endpoint: e,
                    status: s,
                    location,
                    fix,
                } => {
                    assert_eq!((*e, *s), (endpoint, status));
                    assert_eq!(
                        location,
                        &format!("{}/api/public/{endpoint}", target.url),
                        "{err}"
                    );
                    assert_eq!(fix, &format!("set KASM_API_URL to {}", target.url));
                }
                other => panic!("HTTP {status} from {endpoint}: {other:?}"),
            }
            assert!(!err.is_transient(), "{err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("HTTP {status}")) && text.contains("KASM_API_URL"),
                "{text}"
            );
        }
        assert_eq!(
            moved.hits(),
            3,
            "HTTP {status}: one request per call, no retry"
        );
    }
    assert_eq!(
        target.hits(),
        0,
        "a redirect was followed: the request (with the API key and secret) reached the Location"
    );
    // A relative Location resolves against the request's URL; the fix names its base.
    let moved = redirector(StatusCode::PERMANENT_REDIRECT, "/kasm").await;
    let api = client_at(&moved.url, sim.api_key(), sim.api_secret(), options());
    let err = api.get_images().await.unwrap_err();
    assert!(
        matches!(&err, KasmError::Redirect { location, fix, .. }
            if location == &format!("{}/kasm/api/public/get_images", moved.url)
                && fix == &format!("set KASM_API_URL to {}/kasm", moved.url)),
        "{err:?}"
    );
    // The URL the error suggests is the one that works.
    let fixed = client_at(&target.url, sim.api_key(), sim.api_secret(), options());
    fixed
        .get_images()
        .await
        .expect("the suggested KASM_API_URL works");
    assert_eq!(target.hits(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hanging_kasm_times_out_and_only_reads_are_repeated() {
    let sim = simulator(SimulatorConfig::default()).await;
    sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    let counter = proxy(sim.base_url(), 0).await;
    let timeout = Duration::from_millis(300);
    let api = client_at(
        &counter.url,
        sim.api_key(),
        sim.api_secret(),
        kasm_mcp::kasm::ClientOptions {
            request_timeout: timeout,
            read_retries: 1,
            ..options()
        },
    );
    let started = Instant::now();
    let err = api.get_images().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            KasmError::Timeout {
                endpoint: "get_images",
                timeout_ms: 300,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // The message states the whole budget spent, not only one attempt's limit.
    let message = err.to_string();
    let KasmError::Timeout { elapsed_ms, .. } = err else {
        unreachable!()
    };
    assert!(elapsed_ms >= 600, "{message}");
    assert!(
        message.contains("2 attempt(s)")
            && message.contains("300 ms each")
            && message.contains(&format!("{elapsed_ms} ms in all")),
        "{message}"
    );
    assert!(
        elapsed >= timeout * 2 && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(counter.hits(), 2, "one retry of a read-only call");

    let started = Instant::now();
    let err = api
        .request_kasm(&RequestKasm {
            user_id: Some(sim.default_user_id()),
            ..RequestKasm::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, KasmError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(counter.hits(), 3, "request_kasm is never repeated");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_read_succeeds_after_transient_errors() {
    let sim = simulator(SimulatorConfig::default()).await;
    let flaky = proxy(sim.base_url(), 2).await;
    let api = client_at(&flaky.url, sim.api_key(), sim.api_secret(), options());
    let images = api.get_images().await.unwrap();
    assert!(images.iter().any(|i| i.image_id == TERMINAL_IMAGE_ID));
    assert_eq!(flaky.hits(), 3, "two 502s, then the forwarded call");

    let flaky = proxy(sim.base_url(), 2).await;
    let impatient = client_at(
        &flaky.url,
        sim.api_key(),
        sim.api_secret(),
        kasm_mcp::kasm::ClientOptions {
            read_retries: 1,
            ..options()
        },
    );
    let err = impatient.get_images().await.unwrap_err();
    assert!(
        matches!(err, KasmError::Http { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(flaky.hits(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn mutating_calls_are_never_repeated() {
    let sim = simulator(SimulatorConfig::default()).await;
    let direct = client(&sim);
    let user = sim.default_user_id();
    let kasm = running_session(&direct, &user).await;
    // Every call below meets one 502 first; none may try again.
    let exec = ExecConfig {
        cmd: "true".into(),
        ..ExecConfig::default()
    };
    let mut attributes = Map::new();
    attributes.insert("theme".into(), Value::String("dark".into()));
    for endpoint in [
        "request_kasm",
        "exec_command_kasm",
        "create_user",
        "keepalive",
        "update_user_attributes",
        "add_user_group",
        "destroy_kasm",
    ] {
        let flaky = proxy(sim.base_url(), 1).await;
        let api = client_at(&flaky.url, sim.api_key(), sim.api_secret(), options());
        let result = match endpoint {
            "request_kasm" => api
                .request_kasm(&RequestKasm {
                    user_id: Some(user.clone()),
                    ..RequestKasm::default()
                })
                .await
                .map(drop),
            "exec_command_kasm" => api.exec_command_kasm(&kasm, Some(&user), &exec).await,
            "create_user" => api
                .create_user(&NewUser {
                    username: "once@example.com".into(),
                    ..NewUser::default()
                })
                .await
                .map(drop),
            "keepalive" => api.keepalive(&kasm).await.map(drop),
            "update_user_attributes" => api.update_user_attributes(&user, &attributes).await,
            "add_user_group" => {
                api.add_user_group(&user, "a0b1c2d3e4f5460718293a4b5c6d7e8f")
                    .await
            }
            _ => api.destroy_kasm(&kasm, Some(&user)).await,
        };
        assert!(
            matches!(result, Err(KasmError::Http { status: 502, .. })),
            "{endpoint}: {result:?}"
        );
        assert_eq!(flaky.hits(), 1, "{endpoint} was repeated");
    }
    assert_eq!(direct.get_user_kasms(&user).await.unwrap().len(), 1);
    assert!(
        direct
            .get_user(&UserRef::Username("once@example.com".into()))
            .await
            .is_err()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn simulator_error_rate_fault_is_transient_for_reads_only() {
    let sim = simulator(SimulatorConfig::default()).await;
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let counter = proxy(sim.base_url(), 0).await;
    let api = client_at(&counter.url, sim.api_key(), sim.api_secret(), options());
    let err = api.get_kasms().await.unwrap_err();
    assert!(
        matches!(err, KasmError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(counter.hits(), 3, "first try + read_retries (2)");
    let err = api
        .request_kasm(&RequestKasm {
            user_id: Some(sim.default_user_id()),
            ..RequestKasm::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(counter.hits(), 4, "request_kasm was sent once");
    sim.set_faults(Faults::default());
    assert!(
        api.get_user_kasms(&sim.default_user_id())
            .await
            .unwrap()
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn tls_is_verified_by_default_and_a_ca_bundle_is_trusted() {
    let (url, cert_pem) = tls_server().await;
    // Default: a self-signed certificate is refused before any credential is sent.
    let strict = client_at(&url, "k", "s", options());
    match strict.get_images().await.unwrap_err() {
        KasmError::Connect { detail, .. } => {
            assert!(detail.to_lowercase().contains("certificate"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Trusting the certificate through a CA bundle file.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, &cert_pem).unwrap();
    let trusting = client_at(
        &url,
        "k",
        "s",
        kasm_mcp::kasm::ClientOptions {
            ca_bundle: Some(bundle),
            ..options()
        },
    );
    assert!(trusting.get_images().await.unwrap().is_empty());
    // Verification switched off (lab only).
    let lax = client_at(
        &url,
        "k",
        "s",
        kasm_mcp::kasm::ClientOptions {
            verify_tls: false,
            ..options()
        },
    );
    assert!(lax.get_images().await.unwrap().is_empty());
}
