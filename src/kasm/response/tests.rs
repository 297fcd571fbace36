//! Parsing and error-mapping tests with the example payloads R1–R20 of
//! `reference/kasm-api.md` §11, pasted verbatim.

use super::*;
use crate::kasm::{Image, KeepaliveResponse, RequestKasmResponse, User};
use secrecy::ExposeSecret;

const KASM_ID: &str = "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f";

fn ok(body: &str) -> RawResponse {
    with_status(200, body)
}

fn with_status(status: u16, body: &str) -> RawResponse {
    RawResponse {
        status,
        body: Bytes::from(body.to_string()),
    }
}

fn status_of(body: &str) -> KasmResult<SessionStatus> {
    let value = unchecked_json("get_kasm_status", &ok(body))?;
    session_status("get_kasm_status", KASM_ID, &value)
}

const R1: &str = r#"{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f","status":"starting","share_id":null,
 "user_id":"4bbb6998064a4d1ea4685f3cdd05feb4","username":"agent@example.com",
 "session_token":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
 "kasm_url":"/#/connect/kasm/8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f/4bbb6998064a4d1ea4685f3cdd05feb4/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}"#;

#[test]
fn r1_request_kasm_success() {
    let value = json_body("request_kasm", &ok(R1)).unwrap();
    let r: RequestKasmResponse = decode("request_kasm", value).unwrap();
    assert_eq!(r.kasm_id, KASM_ID);
    assert_eq!(r.status.as_deref(), Some("starting"));
    assert_eq!(r.username.as_deref(), Some("agent@example.com"));
    assert_eq!(r.share_id, None);
    assert_eq!(
        r.session_token.as_ref().unwrap().expose_secret(),
        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    );
    assert!(r.kasm_url.unwrap().expose().starts_with("/#/connect/kasm/"));
    // The session token must not leak through Debug, neither from `session_token` nor from
    // the relative `kasm_url`, which embeds the same token.
    let again: RequestKasmResponse =
        decode("request_kasm", serde_json::from_str(R1).unwrap()).unwrap();
    let dbg = format!("{:?}", again.session_token);
    assert!(!dbg.contains("0a1b2c3d-4e5f"), "{dbg}");
    let dbg = format!("{again:?}");
    assert!(!dbg.contains("0a1b2c3d-4e5f"), "{dbg}");
}

#[test]
fn r2_r3_request_kasm_errors_on_http_200() {
    let r2 = r#"{"error_message":"No resources are available to create the requested Kasm. Please try again later or contact an Administrator"}"#;
    match json_body("request_kasm", &ok(r2)).unwrap_err() {
        KasmError::Api { endpoint, message } => {
            assert_eq!(endpoint, "request_kasm");
            assert!(message.starts_with("No resources are available"));
        }
        other => panic!("{other:?}"),
    }
    let r3 = r#"{"error_message":"Kasm limit exceeded for user: (agent@example.com)"}"#;
    let err = json_body("request_kasm", &ok(r3)).unwrap_err();
    assert!(matches!(&err, KasmError::Api { message, .. } if message.contains("limit exceeded")));
    assert!(!err.is_transient());
}

#[test]
fn r4_starting_1_15_is_not_ready() {
    let r4 = r#"{"error_message":"This session is currently starting."}"#;
    assert_eq!(
        status_of(r4).unwrap(),
        SessionStatus::NotReady {
            status: "starting".into(),
            message: "This session is currently starting.".into(),
            progress: None,
        }
    );
    // Through the generic mapping (other endpoints) it is KasmError::NotReady.
    match json_body("get_kasm_frame_stats", &ok(r4)).unwrap_err() {
        KasmError::NotReady { status, .. } => assert_eq!(status, "starting"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn r5_top_level_operational_fields_give_progress() {
    let r5 = r#"{"error_message":"This session is currently provisioning.","operational_status":"provisioning",
 "operational_message":"Pulling image","operational_progress":40}"#;
    assert_eq!(
        status_of(r5).unwrap(),
        SessionStatus::NotReady {
            status: "provisioning".into(),
            message: "Pulling image".into(),
            progress: Some(40),
        }
    );
}

/// A `kasm` object without `operational_status` (nor a message) is a session whose state
/// Kasm does not say yet: `unknown`, with a sentence that says so (not "the session is ").
#[test]
fn kasm_object_without_a_status_is_not_ready_with_a_whole_sentence() {
    for body in [
        r#"{"kasm":{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f"}}"#,
        r#"{"kasm":{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f","operational_status":""}}"#,
        r#"{"kasm":{"operational_status":null,"operational_message":""}}"#,
        r#"{"kasm":{"operational_status":"  "}}"#,
    ] {
        let Ok(SessionStatus::NotReady {
            status,
            message,
            progress,
        }) = status_of(body)
        else {
            panic!("{body}: {:?}", status_of(body));
        };
        assert_eq!((status.as_str(), progress), ("unknown", None), "{body}");
        assert_eq!(
            message,
            "Kasm's answer has no operational_status for the session yet; ask again in a few seconds",
            "{body}"
        );
    }
}

#[test]
fn kasm_object_with_non_running_status_1_19_is_not_ready() {
    let body = r#"{"current_time":"2026-09-10 12:51:31.000000","kasm_url":"/#/connect/kasm/x/y/z",
 "kasm":{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f","operational_status":"starting",
 "operational_message":"Waiting for the container","operational_progress":"75"}}"#;
    assert_eq!(
        status_of(body).unwrap(),
        SessionStatus::NotReady {
            status: "starting".into(),
            message: "Waiting for the container".into(),
            progress: Some(75),
        }
    );
}

pub(crate) const R6: &str = r#"{"current_time":"2026-09-10 12:52:49.123456",
 "kasm_url":"/#/connect/kasm/8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f/4bbb6998064a4d1ea4685f3cdd05feb4/5d6e7f80-91a2-4b3c-8d4e-5f60718293a4",
 "kasm":{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f","user_id":"4bbb6998064a4d1ea4685f3cdd05feb4",
  "image_id":"c7af5cfaf7a649b69afd948f11199bd1","operational_status":"running",
  "container_id":"3f1e2d4c5b6a79808f7e6d5c4b3a29181716151413121110f0e0d0c0b0a09080",
  "container_ip":"172.18.0.4","server_id":"a1b2c3d4e5f60718293a4b5c6d7e8f90",
  "host":"10.0.0.120","hostname":"kasm.example.com","port":443,
  "start_date":"2026-09-10 12:51:30.000001","keepalive_date":"2026-09-10 12:51:30.000001",
  "expiration_date":"2026-09-10 13:51:30.000001","cores":2.0,"memory":2768000000,
  "share_id":null,"token":"","view_only_token":"","point_of_presence":null,
  "is_persistent_profile":false,"persistent_profile_mode":null,
  "port_map":{"vnc":{"port":443,"path":"desktop/8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f/vnc"},
              "audio":{"port":443,"path":"desktop/8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f/audio"},
              "audio_input":{"port":443,"path":"desktop/8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f/audio_input"},
              "uploads":{"port":443,"path":"desktop/8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f/uploads"}},
  "image":{"image_id":"c7af5cfaf7a649b69afd948f11199bd1","name":"kasmweb/terminal:1.19.0",
           "friendly_name":"Terminal","image_src":"img/thumbnails/terminal.png",
           "session_time_limit":null,"categories":["Development"],"default_category":"Development",
           "image_type":"Container"},
  "client_settings":{"allow_kasm_audio":true,"allow_kasm_uploads":true,"allow_kasm_downloads":true,
   "allow_kasm_clipboard_down":true,"allow_kasm_clipboard_up":true,"allow_kasm_clipboard_seamless":true,
   "allow_kasm_microphone":false,"allow_kasm_sharing":false,"idle_disconnect":20,
   "enable_webp":true,"kasm_audio_default_on":true,"lock_sharing_video_mode":true,
   "allow_persistent_profile":false,"allow_point_of_presence":false}}}"#;

#[test]
fn r6_running() {
    match status_of(R6).unwrap() {
        SessionStatus::Running { session, kasm_url } => {
            assert_eq!(session.kasm_id, KASM_ID);
            assert_eq!(session.container_ip.as_deref(), Some("172.18.0.4"));
            assert_eq!(session.hostname.as_deref(), Some("kasm.example.com"));
            let image = session.image.as_ref().unwrap();
            assert_eq!(image.friendly_name.as_deref(), Some("Terminal"));
            assert!(kasm_url.unwrap().expose().contains("5d6e7f80"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn r7_paused_is_inactive() {
    assert_eq!(
        status_of(r#"{"operational_status":"paused"}"#).unwrap(),
        SessionStatus::Inactive {
            status: "paused".into()
        }
    );
}

#[test]
fn scheduled_states_and_deletion() {
    let pausing = r#"{"error_message":"This session is currently scheduled to be paused."}"#;
    assert_eq!(status_of(pausing).unwrap().status(), "pausing");
    let deleted = r#"{"error_message":"Kasm is currently scheduled to be deleted."}"#;
    assert!(matches!(
        status_of(deleted).unwrap_err(),
        KasmError::NotFound {
            what: "session",
            ..
        }
    ));
    let deleting = r#"{"operational_status":"deleting"}"#;
    assert!(matches!(
        status_of(deleting).unwrap_err(),
        KasmError::NotFound {
            what: "session",
            ..
        }
    ));
}

#[test]
fn r8_unknown_or_foreign_session_is_not_found() {
    for body in [
        r#"{"error_message":"Could not find requested Kasm."}"#,
        r#"{"error_message":"Access Denied"}"#,
    ] {
        match status_of(body).unwrap_err() {
            KasmError::NotFound { what, .. } => assert_eq!(what, "session"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // On a non-session endpoint, a 200 "Access Denied" is just Kasm refusing.
    assert!(matches!(
        json_body("get_images", &ok(r#"{"error":"Access Denied"}"#)).unwrap_err(),
        KasmError::Api { .. }
    ));
}

#[test]
fn r9_get_kasms() {
    let r9 = r#"{"current_time":"2026-09-10 12:55:00.000000",
 "kasms":[{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f","user_id":"4bbb6998064a4d1ea4685f3cdd05feb4",
   "operational_status":"running","image_id":"c7af5cfaf7a649b69afd948f11199bd1",
   "image":{"image_id":"c7af5cfaf7a649b69afd948f11199bd1","name":"kasmweb/terminal:1.19.0","friendly_name":"Terminal"},
   "user":{"username":"agent@example.com"},
   "server":{"hostname":"agent1.internal","port":443,"provider":"docker","zone_name":"default"},
   "container_ip":"172.18.0.4","start_date":"2026-09-10 12:51:30.000001",
   "keepalive_date":"2026-09-10 12:51:30.000001","expiration_date":"2026-09-10 13:51:30.000001"}]}"#;
    let value = json_body("get_kasms", &ok(r9)).unwrap();
    let kasms: Vec<Session> = list_field("get_kasms", &value, "kasms").unwrap();
    assert_eq!(kasms.len(), 1);
    assert_eq!(kasms[0].operational_status.as_deref(), Some("running"));
    assert_eq!(
        kasms[0].user.as_ref().unwrap()["username"],
        "agent@example.com"
    );
    let empty = json_body("get_kasms", &ok(r#"{"kasms":[]}"#)).unwrap();
    assert!(
        list_field::<Session>("get_kasms", &empty, "kasms")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn r10_exec_accepted_without_output() {
    let r10 = r#"{"current_time":"2026-09-10 12:56:10.000000","kasm":{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f","operational_status":"running","container_ip":"172.18.0.4","port_map":{},"image":{"image_id":"c7af5cfaf7a649b69afd948f11199bd1","name":"kasmweb/terminal:1.19.0","friendly_name":"Terminal"}}}"#;
    let value = json_body("exec_command_kasm", &ok(r10)).unwrap();
    expect_object("exec_command_kasm", &value).unwrap();
}

#[test]
fn r11_exec_errors() {
    let not_running = r#"{"error_message":"Kasm is not running or is not responding"}"#;
    assert!(matches!(
        json_body("exec_command_kasm", &ok(not_running)).unwrap_err(),
        KasmError::Api { message, .. } if message.contains("not running")
    ));
    let bad = r#"{"error_message":"Invalid request, check paramemters"}"#;
    assert!(matches!(
        json_body("exec_command_kasm", &ok(bad)).unwrap_err(),
        KasmError::Api { .. }
    ));
}

#[test]
fn r12_r13_empty_success_and_pause_refusal() {
    let value = json_body("destroy_kasm", &ok("{}")).unwrap();
    expect_object("destroy_kasm", &value).unwrap();
    let r13 = r#"{"error_message":"User is not authorized to issue a pause request"}"#;
    assert!(matches!(
        json_body("pause_kasm", &ok(r13)).unwrap_err(),
        KasmError::Api {
            endpoint: "pause_kasm",
            ..
        }
    ));
    // A body that is JSON but not an object is not the documented `{}`.
    assert!(expect_object("destroy_kasm", &serde_json::json!([1])).is_err());
}

#[test]
fn r14_get_images() {
    let r14 = r#"{"images":[{"image_id":"c7af5cfaf7a649b69afd948f11199bd1","name":"kasmweb/terminal:1.19.0",
  "friendly_name":"Terminal","description":"Terminal workspace","enabled":true,"available":true,
  "image_src":"img/thumbnails/terminal.png","cores":2.0,"memory":2768000000,"gpu_count":0,
  "categories":["Development"],"image_type":"Container","run_config":{},"exec_config":{},
  "volume_mappings":{},"session_time_limit":null,"server":{},"server_pool":{}}]}"#;
    let value = json_body("get_images", &ok(r14)).unwrap();
    let images: Vec<Image> = list_field("get_images", &value, "images").unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].friendly_name.as_deref(), Some("Terminal"));
    assert_eq!(images[0].enabled, Some(true));
    assert_eq!(images[0].memory, Some(2_768_000_000));
    assert_eq!(images[0].categories, vec!["Development".to_string()]);
}

#[test]
fn r15_create_user() {
    let r15 = r#"{"user":{"first_name":"Bob","username":"test_user1@example.com","realm":"local","last_name":"Williams",
 "phone":"123-456-7890","last_session":null,"notes":null,"user_id":"50faa5439c574b518cd868dac9256e4b",
 "groups":[{"name":"All Users","group_id":"68d557ac4cac42cca9f31c7c853de0f3"}],
 "disabled":false,"organization":"example","locked":false}}"#;
    let value = json_body("create_user", &ok(r15)).unwrap();
    let user: User = required_field("create_user", &value, "user").unwrap();
    assert_eq!(user.user_id, "50faa5439c574b518cd868dac9256e4b");
    assert_eq!(user.groups[0].name.as_deref(), Some("All Users"));
    assert_eq!(user.locked, Some(false));
    assert!(required_field::<User>("create_user", &serde_json::json!({}), "user").is_err());
}

#[test]
fn r16_get_users() {
    let r16 = r#"{"users":[{"user_id":"50faa5439c574b518cd868dac9256e4b","username":"test_user1@example.com","anonymous":false,
 "locked":false,"disabled":false,"last_session":"None","groups":[],"first_name":"Bob","last_name":"Williams",
 "phone":"123-456-7890","organization":"example","notes":null,"kasms":[],"realm":"local","company":{},
 "created":"2026-09-01 10:00:00.000000"}],"total":1}"#;
    let value = json_body("get_users", &ok(r16)).unwrap();
    let users: Vec<User> = list_field("get_users", &value, "users").unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].last_session, Some(Value::String("None".into())));
    assert_eq!(users[0].anonymous, Some(false));
}

#[test]
fn r17_get_login() {
    let r17 = r#"{"url":"https://kasm.example.com/#/connect/login/dash/50faa5439c574b518cd868dac9256e4b/7c0d9e8f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"}"#;
    let value = json_body("get_login", &ok(r17)).unwrap();
    let url: String = required_field("get_login", &value, "url").unwrap();
    assert!(url.starts_with("https://kasm.example.com/#/connect/login/dash/"));
}

#[test]
fn r18_keepalive() {
    let value = json_body("keepalive", &ok(r#"{"usage_reached":false}"#)).unwrap();
    let k: KeepaliveResponse = decode("keepalive", value).unwrap();
    assert!(!k.usage_reached);
}

#[test]
fn r19_auth_failures() {
    assert!(matches!(
        json_body(
            "get_images",
            &with_status(403, r#"{"error_message":"Access Denied"}"#)
        )
        .unwrap_err(),
        KasmError::BadCredentials
    ));
    match json_body(
        "get_kasms",
        &with_status(401, r#"{"error_message":"Unauthorized"}"#),
    )
    .unwrap_err()
    {
        KasmError::MissingPermission {
            endpoint,
            permission,
            message,
        } => {
            assert_eq!(endpoint, "get_kasms");
            assert_eq!(permission, "Sessions View");
            assert_eq!(message, "Unauthorized");
        }
        other => panic!("{other:?}"),
    }
    let imp = r#"{"error_message":"API Key (ci-key) is not authorized to impersonate a user."}"#;
    assert!(matches!(
        json_body("request_kasm", &with_status(401, imp)).unwrap_err(),
        KasmError::MissingPermission {
            permission: "Users Auth Session",
            ..
        }
    ));
    let bad_user = r#"{"error_message":"Invalid user_id (00000000000000000000000000000000)"}"#;
    match json_body("get_kasm_status", &with_status(400, bad_user)).unwrap_err() {
        KasmError::InvalidRequest { message, .. } => assert!(message.contains("Invalid user_id")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_auth_layer_answers() {
    // 1.19: a missing permission may come as 403 "Unauthorized".
    assert!(matches!(
        json_body(
            "exec_command_kasm",
            &with_status(403, r#"{"error_message":"Unauthorized"}"#)
        )
        .unwrap_err(),
        KasmError::MissingPermission {
            permission: "Sessions Modify",
            ..
        }
    ));
    assert!(matches!(
        json_body(
            "get_images",
            &with_status(401, r#"{"error_message":"Access has expired"}"#)
        )
        .unwrap_err(),
        KasmError::KeyExpired
    ));
    assert!(matches!(
        json_body(
            "get_images",
            &with_status(
                403,
                r#"{"error_message":"Access Denied. This feature is not licensed"}"#
            )
        )
        .unwrap_err(),
        KasmError::NotLicensed
    ));
    assert!(matches!(
        json_body(
            "get_login",
            &with_status(400, r#"{"error_message":"No user found with id: (abc)"}"#)
        )
        .unwrap_err(),
        KasmError::NotFound { what: "user", .. }
    ));
}

#[test]
fn html_and_other_non_json_bodies() {
    let html = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body>\n<h1>Not Found</h1><p>The path '/api/public/get_images' was not found.</p>\n".repeat(3);
    for status in [200, 404, 403] {
        match json_body("get_images", &with_status(status, &html)).unwrap_err() {
            KasmError::NotJson {
                endpoint,
                status: s,
                snippet,
            } => {
                assert_eq!((endpoint, s), ("get_images", status));
                assert!(
                    snippet.starts_with("<!DOCTYPE html> <html><head>"),
                    "{snippet}"
                );
                assert!(snippet.chars().count() <= 121, "{snippet}");
            }
            other => panic!("{other:?}"),
        }
    }
    // A 502 page from a proxy is a transient HTTP error, not a configuration problem.
    let err = json_body("get_images", &with_status(502, "<html>Bad Gateway</html>")).unwrap_err();
    assert!(matches!(err, KasmError::Http { status: 502, .. }) && err.is_transient());
    assert!(matches!(
        json_body("get_images", &ok("")).unwrap_err(),
        KasmError::NotJson { .. }
    ));
}

#[test]
fn r20_screenshot() {
    let jpeg = RawResponse {
        status: 200,
        body: Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
    };
    assert_eq!(
        screenshot("get_kasm_screenshot", jpeg).unwrap()[..2],
        [0xFF, 0xD8]
    );
    assert!(matches!(
        screenshot("get_kasm_screenshot", with_status(404, "")).unwrap_err(),
        KasmError::NotFound {
            what: "session",
            ..
        }
    ));
    assert!(matches!(
        screenshot("get_kasm_screenshot", ok("<html>loading</html>")).unwrap_err(),
        KasmError::Decode { .. }
    ));
    let starting = ok(r#"{"error_message":"This session is currently starting."}"#);
    assert!(matches!(
        screenshot("get_kasm_screenshot", starting).unwrap_err(),
        KasmError::NotReady { .. }
    ));
    assert!(matches!(
        screenshot("get_kasm_screenshot", with_status(400, "")).unwrap_err(),
        KasmError::InvalidRequest { .. }
    ));
}

#[test]
fn error_fields_that_are_empty_or_null_are_not_errors() {
    assert!(json_body("get_images", &ok(r#"{"error_message":null,"images":[]}"#)).is_ok());
    assert!(json_body("get_images", &ok(r#"{"error_message":"","images":[]}"#)).is_ok());
}
