//! Session endpoints: the lifecycle end to end, both "starting" shapes, unknown and not-running sessions, the per-user limit, sharing and recordings.

use std::time::{Duration, Instant};

use kasm_mcp::kasm::{ExecConfig, KasmApi, KasmError, RequestKasm, SessionStatus};
use kasm_mcp::simulator::{KasmVersion, Simulator, SimulatorConfig, TERMINAL_IMAGE_ID};

use super::support::*;

#[tokio::test]
async fn session_lifecycle_end_to_end() {
    let sim = simulator(SimulatorConfig::default()).await;
    let api = client(&sim);
    let user = sim.default_user_id();
    let created = api
        .request_kasm(&RequestKasm {
            user_id: Some(user.clone()),
            image_id: Some(TERMINAL_IMAGE_ID.to_string()),
            ..RequestKasm::default()
        })
        .await
        .unwrap();
    assert_eq!(created.status.as_deref(), Some("starting"));
    assert!(created.session_token.is_some());
    let kasm = created.kasm_id.clone();
    // Dashed ids work as well as Kasm's 32-hex form.
    let dashed = format!(
        "{}-{}-{}-{}-{}",
        &kasm[..8],
        &kasm[8..12],
        &kasm[12..16],
        &kasm[16..20],
        &kasm[20..]
    );
    let seen = wait_running(&api, &dashed, &user).await;
    assert!(
        matches!(&seen[0], SessionStatus::NotReady { status, .. } if status == "starting"),
        "1.15 reports starting first: {seen:?}"
    );
    match seen.last().unwrap() {
        SessionStatus::Running { session, kasm_url } => {
            assert_eq!(session.kasm_id, kasm);
            assert!(
                kasm_url
                    .as_ref()
                    .unwrap()
                    .expose()
                    .starts_with("/#/connect/kasm/")
            );
        }
        other => panic!("{other:?}"),
    }

    let all = api.get_kasms().await.unwrap();
    assert!(all.iter().any(|s| s.kasm_id == kasm), "{all:?}");
    let mine = api.get_user_kasms(&user).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert!(!api.keepalive(&kasm).await.unwrap().usage_reached);

    // exec really runs in the session's sandbox and returns nothing.
    let exec = ExecConfig {
        cmd: r#"sh -c 'echo hi > "$HOME/x"'"#.into(),
        ..ExecConfig::default()
    };
    api.exec_command_kasm(&kasm, Some(&user), &exec)
        .await
        .unwrap();
    let file = sim.session_dir(&kasm).unwrap().join("x");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&file).ok().as_deref() != Some("hi\n") {
        assert!(
            Instant::now() < deadline,
            "exec never wrote {}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let jpeg = api
        .get_kasm_screenshot(&kasm, Some(&user), 320, 200)
        .await
        .unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    assert!(
        api.get_kasm_frame_stats(&kasm, Some(&user), "auto")
            .await
            .unwrap()
            .is_object()
    );
    assert!(
        api.get_kasm_bottleneck_stats(&kasm, Some(&user))
            .await
            .unwrap()
            .is_object()
    );

    // pause → paused (inactive); pausing twice is refused; keepalive refused while paused.
    api.pause_kasm(&kasm, Some(&user)).await.unwrap();
    assert_eq!(
        api.get_kasm_status(&kasm, Some(&user)).await.unwrap(),
        SessionStatus::Inactive {
            status: "paused".into()
        }
    );
    let err = api.pause_kasm(&kasm, Some(&user)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            KasmError::Api {
                endpoint: "pause_kasm",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(api.keepalive(&kasm).await.is_err());
    api.resume_kasm(&kasm, Some(&user)).await.unwrap();
    wait_running(&api, &kasm, &user).await;
    let err = api.resume_kasm(&kasm, Some(&user)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            KasmError::Api {
                endpoint: "resume_kasm",
                ..
            }
        ),
        "{err:?}"
    );
    api.stop_kasm(&kasm, Some(&user)).await.unwrap();
    assert_eq!(
        api.get_kasm_status(&kasm, Some(&user))
            .await
            .unwrap()
            .status(),
        "stopped"
    );
    let err = api.stop_kasm(&kasm, Some(&user)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            KasmError::Api {
                endpoint: "stop_kasm",
                ..
            }
        ),
        "{err:?}"
    );

    api.destroy_kasm(&kasm, Some(&user)).await.unwrap();
    let err = api.get_kasm_status(&kasm, Some(&user)).await.unwrap_err();
    assert!(
        matches!(
            err,
            KasmError::NotFound {
                what: "session",
                ..
            }
        ),
        "{err:?}"
    );
    let err = api.destroy_kasm(&kasm, Some(&user)).await.unwrap_err();
    assert!(matches!(err, KasmError::NotFound { .. }), "{err:?}");
    assert!(api.get_user_kasms(&user).await.unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn starting_shape_of_1_19_carries_progress() {
    let sim = Simulator::start(SimulatorConfig {
        kasm_version: KasmVersion::V1_19,
        start_delay: Duration::from_secs(30),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let api = client(&sim);
    let user = sim.default_user_id();
    let created = api
        .request_kasm(&RequestKasm {
            user_id: Some(user.clone()),
            ..RequestKasm::default()
        })
        .await
        .unwrap();
    match api
        .get_kasm_status(&created.kasm_id, Some(&user))
        .await
        .unwrap()
    {
        SessionStatus::NotReady {
            status, progress, ..
        } => {
            assert_eq!(status, "starting");
            assert!(progress.is_some_and(|p| p < 100), "{progress:?}");
        }
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_session_errors() {
    let sim = simulator(SimulatorConfig::default()).await;
    let api = client(&sim);
    let user = sim.default_user_id();
    let u = Some(user.as_str());
    let not_found = |name: &str, r: Result<(), KasmError>| {
        assert!(
            matches!(
                r,
                Err(KasmError::NotFound {
                    what: "session",
                    ..
                })
            ),
            "{name}: {r:?}"
        );
    };
    not_found(
        "status",
        api.get_kasm_status(NO_SUCH_KASM, u).await.map(drop),
    );
    not_found("destroy", api.destroy_kasm(NO_SUCH_KASM, u).await);
    not_found("stop", api.stop_kasm(NO_SUCH_KASM, u).await);
    not_found("pause", api.pause_kasm(NO_SUCH_KASM, u).await);
    not_found("resume", api.resume_kasm(NO_SUCH_KASM, u).await);
    not_found("keepalive", api.keepalive(NO_SUCH_KASM).await.map(drop));
    not_found(
        "screenshot",
        api.get_kasm_screenshot(NO_SUCH_KASM, u, 10, 10)
            .await
            .map(drop),
    );
    not_found(
        "frame stats",
        api.get_kasm_frame_stats(NO_SUCH_KASM, u, "auto")
            .await
            .map(drop),
    );
    not_found(
        "bottleneck stats",
        api.get_kasm_bottleneck_stats(NO_SUCH_KASM, u)
            .await
            .map(drop),
    );
    not_found("join", api.join_kasm("nosuchshare", u).await.map(drop));
    // Kasm answers exec on an unknown session with its generic (misspelt) parameter error.
    let exec = ExecConfig {
        cmd: "true".into(),
        ..ExecConfig::default()
    };
    let err = api
        .exec_command_kasm(NO_SUCH_KASM, u, &exec)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KasmError::Api { message, .. } if message.contains("paramemters")),
        "{err:?}"
    );
    // Non-UUIDs never reach Kasm.
    assert!(matches!(
        api.get_kasm_status("../../etc", u).await.unwrap_err(),
        KasmError::InvalidArgument(_)
    ));
    // An unknown acting user is Kasm's 400 "Invalid user_id".
    let err = api
        .get_kasm_status(NO_SUCH_KASM, Some("11111111111111111111111111111111"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KasmError::InvalidRequest { message, .. } if message.contains("Invalid user_id")),
        "{err:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn session_not_running_errors() {
    let sim = Simulator::start(SimulatorConfig {
        start_delay: Duration::from_secs(60),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let api = client(&sim);
    let user = sim.default_user_id();
    let u = Some(user.as_str());
    let created = api
        .request_kasm(&RequestKasm {
            user_id: Some(user.clone()),
            enable_sharing: true,
            ..RequestKasm::default()
        })
        .await
        .unwrap();
    let kasm = created.kasm_id.as_str();
    let exec = ExecConfig {
        cmd: "true".into(),
        ..ExecConfig::default()
    };
    let err = api.exec_command_kasm(kasm, u, &exec).await.unwrap_err();
    assert!(
        matches!(&err, KasmError::Api { message, .. } if message.contains("not running")),
        "{err:?}"
    );
    let err = api.get_kasm_frame_stats(kasm, u, "auto").await.unwrap_err();
    assert!(
        matches!(&err, KasmError::NotReady { status, .. } if status == "starting"),
        "{err:?}"
    );
    let err = api.get_kasm_screenshot(kasm, u, 10, 10).await.unwrap_err();
    assert!(
        matches!(&err, KasmError::Http { status: 500, .. }),
        "{err:?}"
    );
    let share = created.share_id.expect("sharing was enabled");
    let err = api.join_kasm(&share, u).await.unwrap_err();
    assert!(matches!(&err, KasmError::NotReady { .. }), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn per_user_session_limit() {
    let sim = simulator(SimulatorConfig::default()).await;
    let api = client(&sim);
    let request = RequestKasm {
        user_id: Some(sim.default_user_id()),
        ..RequestKasm::default()
    };
    api.request_kasm(&request).await.unwrap();
    api.request_kasm(&request).await.unwrap();
    let err = api.request_kasm(&request).await.unwrap_err();
    assert!(
        matches!(&err, KasmError::Api { endpoint: "request_kasm", message } if message.starts_with("Kasm limit exceeded for user")),
        "{err:?}"
    );
    assert_eq!(
        api.get_user_kasms(&sim.default_user_id())
            .await
            .unwrap()
            .len(),
        2
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn shared_sessions_and_recordings() {
    let sim = simulator(SimulatorConfig::default()).await;
    let api = client(&sim);
    let user = sim.default_user_id();
    let created = api
        .request_kasm(&RequestKasm {
            user_id: Some(user.clone()),
            enable_sharing: true,
            ..RequestKasm::default()
        })
        .await
        .unwrap();
    wait_running(&api, &created.kasm_id, &user).await;
    let share = created.share_id.expect("sharing was enabled");
    let joined = api.join_kasm(&share, Some(&user)).await.unwrap();
    assert!(joined.kasm.is_some());
    assert!(joined.kasm_url.unwrap().expose().contains(&share));
    assert!(matches!(
        api.join_kasm("not a share id!", Some(&user))
            .await
            .unwrap_err(),
        KasmError::InvalidArgument(_)
    ));
    let recordings = api
        .get_session_recordings(&created.kasm_id, true)
        .await
        .unwrap();
    assert!(recordings.session_recordings.is_empty());
    sim.shutdown().await;
}
