//! Loading and validation of the whole configuration.

use std::path::Path;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_valid_and_loopback() {
    let c = Config::load_from(Some(Path::new("/nonexistent")), &[]);
    assert!(c.is_err(), "a named file that is missing is an error");
    let c = Config::load_from(None, &[]).unwrap();
    assert_eq!(c.server.port, 8080);
    assert!(c.listens_on_loopback());
    assert_eq!(c.policy.allowed_roots, vec!["/home/kasm-user".to_string()]);
    assert!(c.kasm.verify_tls);
}

#[test]
fn original_env_names_apply() {
    let c = Config::load_from(
        None,
        &env(&[
            ("KASM_API_URL", "https://kasm.example.com"),
            ("KASM_API_KEY", "k"),
            ("KASM_API_SECRET", "s"),
            ("MCP_SERVER_PORT", "9000"),
            ("ALLOWED_ROOTS", "/home/kasm-user, /tmp/work"),
            ("KASM_VERIFY_TLS", "false"),
            ("KASM_MCP_LIMITS__PER_IP_BURST", "7"),
        ]),
    )
    .unwrap();
    assert_eq!(c.server.port, 9000);
    assert_eq!(c.policy.allowed_roots, vec!["/home/kasm-user", "/tmp/work"]);
    assert!(!c.kasm.verify_tls);
    assert_eq!(c.limits.per_ip_burst, 7);
    assert!(c.missing_kasm_settings().is_empty());
}

#[test]
fn bad_values_name_key_value_and_fix() {
    let err = Config::load_from(None, &env(&[("MCP_SERVER_PORT", "eighty")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.port"), "{err}");
    let err = Config::load_from(None, &env(&[("KASM_API_URL", "kasm.local")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("KASM_API_URL") && err.contains("kasm.local") && err.contains("http"),
        "{err}"
    );
    let err = Config::load_from(None, &env(&[("ALLOWED_ROOTS", "relative/dir")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ALLOWED_ROOTS") && err.contains("absolute"),
        "{err}"
    );
    let err = Config::load_from(None, &env(&[("KASM_USER_ID", "bob")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("KASM_USER_ID") && err.contains("bob"), "{err}");
}

#[test]
fn auth_off_only_on_loopback() {
    let err = Config::load_from(
        None,
        &env(&[
            ("MCP_SERVER_HOST", "0.0.0.0"),
            ("KASM_MCP_AUTH__DISABLED", "true"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("auth.disabled"), "{err}");
    assert!(Config::load_from(None, &env(&[("KASM_MCP_AUTH__DISABLED", "true")])).is_ok());
}

fn token(name: &str, role: &str, kasm_user_id: Option<&str>) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        sha256: "a".repeat(64).parse().unwrap(),
        role: role.parse().unwrap(),
        kasm_user_id: kasm_user_id.map(str::to_owned),
    }
}

#[test]
fn token_names_must_be_unique() {
    let mut c = Config::default();
    c.auth.tokens = vec![token("ops", "operator", None), token("ops", "viewer", None)];
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("auth.tokens[].name") && err.contains("\"ops\"") && err.contains("unique"),
        "{err}"
    );
    c.auth.tokens[1].name = "ops2".into();
    c.validate().unwrap();
    c.auth.tokens[1].name = "oauth:alice".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("reserved for OAuth principals"), "{err}");
}

#[test]
fn shared_kasm_user_principals_are_reported_not_refused() {
    let uid = "0123456789abcdef0123456789abcdef";
    let mut c = Config::default();
    c.auth.tokens = vec![
        token("a", "operator", None),
        token("root", "admin", None),
        token("own", "operator", Some(uid)),
    ];
    assert!(
        c.shared_user_principals().is_empty(),
        "one sharer is no sharing"
    );
    c.auth.tokens.push(token("b", "viewer", None));
    c.validate().unwrap();
    assert_eq!(c.shared_user_principals(), vec!["a", "b"]);
}

#[test]
fn string_keys_from_env_are_never_type_guessed() {
    let c = Config::load_from(
        None,
        &env(&[
            ("KASM_API_URL", "https://kasm.example.com"),
            ("KASM_API_KEY", "1234567890"),
            ("KASM_API_SECRET", "12345678901234567890123456789012"),
            ("KASM_USER_ID", "01234567890123456789012345678901"),
            ("KASM_MCP_SERVER__SESSION_SECRET", "1e10"),
        ]),
    )
    .unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(c.kasm.api_key.unwrap().expose_secret(), "1234567890");
    assert_eq!(
        c.kasm.api_secret.unwrap().expose_secret(),
        "12345678901234567890123456789012"
    );
    assert_eq!(
        c.kasm.user_id.as_deref(),
        Some("01234567890123456789012345678901")
    );
    assert_eq!(c.server.session_secret.unwrap().expose_secret(), "1e10");
    // A non-string key is still type-checked, and a bad secret-free value is still named.
    let err = Config::load_from(
        None,
        &env(&[("KASM_API_SECRET", "true"), ("MCP_SERVER_PORT", "x")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("server.port") && !err.contains("api_secret"),
        "{err}"
    );
}

#[test]
fn huge_timeouts_and_control_characters_in_roots_are_refused() {
    let err = Config::load_from(
        None,
        &env(&[("KASM_MCP_POLICY__MAX_TIMEOUT_S", "18446744073709551615")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("policy.max_timeout_s") && err.contains("86400"),
        "{err}"
    );
    let err = Config::load_from(None, &env(&[("ALLOWED_ROOTS", "/home/kasm-user\n/etc")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("policy.allowed_roots") && err.contains("control character"),
        "{err}"
    );
}

#[test]
fn the_shipped_example_file_loads_and_matches_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kasm-mcp.example.toml");
    let c = Config::load_from(Some(&example), &[]).unwrap();
    let d = Config::load_from(None, &[]).unwrap();
    assert_eq!(c.server.port, d.server.port);
    assert_eq!(c.server.max_body_bytes, d.server.max_body_bytes);
    assert_eq!(c.policy.allowed_roots, d.policy.allowed_roots);
    assert_eq!(c.policy.max_file_bytes, d.policy.max_file_bytes);
    assert_eq!(c.limits.per_ip_burst, d.limits.per_ip_burst);
    assert_eq!(c.kasm.request_timeout_ms, d.kasm.request_timeout_ms);
    assert_eq!(c.desktop, d.desktop);
    assert!(!c.auth.disabled && c.auth.tokens.is_empty());
    assert_eq!(
        format!("{:?}", c.oauth),
        format!("{:?}", d.oauth),
        "the [oauth] example must show the defaults"
    );
    assert_eq!(c.quotas.reaper_interval_s, d.quotas.reaper_interval_s);
    assert_eq!(c.quotas.max_sessions, d.quotas.max_sessions);
    assert_eq!(c.audit.sink, d.audit.sink);
    assert_eq!(c.images.operator, d.images.operator);
    assert_eq!(
        format!("{:?}", c.cluster),
        format!("{:?}", d.cluster),
        "the [cluster] example must show the defaults"
    );
    let sections = [
        (
            "connections",
            json_of(&c.connections),
            json_of(&d.connections),
        ),
        ("batch", json_of(&c.batch), json_of(&d.batch)),
        ("runtime", json_of(&c.runtime), json_of(&d.runtime)),
        ("legacy_sse", json_of(&c.legacy_sse), json_of(&d.legacy_sse)),
        ("lifecycle", json_of(&c.lifecycle), json_of(&d.lifecycle)),
        (
            "relay_limits",
            json_of(&c.relay_limits),
            json_of(&d.relay_limits),
        ),
    ];
    let text = std::fs::read_to_string(&example).unwrap();
    for (section, shipped, default) in sections {
        assert_eq!(shipped, default, "[{section}] states the defaults");
        let keys = figment::Figment::from(
            <figment::providers::Toml as figment::providers::Format>::string(&text),
        )
        .find_value(section)
        .ok()
        .and_then(|v| v.into_dict())
        .map(|d| d.len())
        .unwrap_or(0);
        let expected = default.as_object().map(|o| o.len()).unwrap_or(0);
        assert_eq!(
            keys, expected,
            "every [{section}] key is in the example file"
        );
    }
}

fn json_of<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

#[test]
fn connection_batch_queue_and_relay_limits_are_validated() {
    for (var, value, key) in [
        (
            "KASM_MCP_CONNECTIONS__HEADER_READ_TIMEOUT_S",
            "0",
            "connections.header_read_timeout_s",
        ),
        (
            "KASM_MCP_CONNECTIONS__IDLE_TIMEOUT_S",
            "0",
            "connections.idle_timeout_s",
        ),
        (
            "KASM_MCP_CONNECTIONS__MAX_OPEN",
            "0",
            "connections.max_open",
        ),
        (
            "KASM_MCP_CONNECTIONS__MAX_OPEN_PER_IP",
            "99999",
            "connections.max_open_per_ip",
        ),
        ("KASM_MCP_BATCH__MAX_ITEMS", "0", "batch.max_items"),
        ("KASM_MCP_BATCH__CONCURRENCY", "0", "batch.concurrency"),
        (
            "KASM_MCP_RUNTIME__WORKER_THREADS",
            "1025",
            "runtime.worker_threads",
        ),
        (
            "KASM_MCP_LEGACY_SSE__QUEUE_MESSAGES",
            "0",
            "legacy_sse.queue_messages",
        ),
        (
            "KASM_MCP_LEGACY_SSE__MAX_STREAMS",
            "0",
            "legacy_sse.max_streams",
        ),
        (
            // Above the default max_streams (1024).
            "KASM_MCP_LEGACY_SSE__MAX_STREAMS_PER_PRINCIPAL",
            "2000",
            "legacy_sse.max_streams_per_principal",
        ),
        (
            "KASM_MCP_RELAY_LIMITS__UNKNOWN_TICKET_PER_SECOND",
            "0",
            "relay_limits.unknown_ticket_per_second",
        ),
    ] {
        let err = Config::load_from(None, &env(&[(var, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key) && err.contains("use "), "{var}: {err}");
    }
    let c = Config::load_from(
        None,
        &env(&[
            ("KASM_MCP_CONNECTIONS__MAX_OPEN_PER_IP", "0"),
            ("KASM_MCP_BATCH__MAX_ITEMS", "7"),
        ]),
    )
    .unwrap();
    assert_eq!(c.connections.max_open_per_ip, 0);
    assert_eq!(c.batch.max_items, 7);
}

#[test]
fn quota_audit_and_image_sections_are_checked_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let table = [
        ("[quotas]\nmax_sessions = 0\n", Some("quotas.max_sessions")),
        (
            "[quotas]\nreaper_interval_s = 0\n",
            Some("quotas.reaper_interval_s"),
        ),
        ("[audit]\nsink = \"file\"\n", Some("audit.file")),
        ("[audit]\nsink = \"file\"\nfile = \"/tmp/a.jsonl\"\n", None),
        ("[images]\noperator = [\"Terminal\"]\n", None),
        (
            "[quotas]\nmax_concurrent_exec = 2\nsession_max_lifetime_s = 60\n",
            None,
        ),
    ];
    for (text, bad_key) in table {
        std::fs::write(&path, text).unwrap();
        let result = Config::load_from(Some(&path), &[]).and_then(|c| c.validate().map(|_| c));
        match bad_key {
            Some(key) => {
                let err = result.map(|_| ()).unwrap_err().to_string();
                assert!(err.contains(key), "{text}: {err}");
            }
            None => assert!(result.is_ok(), "{text}: {:?}", result.err()),
        }
    }
    let c = Config::load_from(Some(&path), &[]).unwrap();
    assert_eq!(c.quotas.max_concurrent_exec, Some(2));
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = Config::load_from(None, &env(&[("KASM_API_SECRET", "hunter2-very-secret")])).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    let c = Config::load_from(
        None,
        &env(&[("KASM_MCP_SERVER__SESSION_SECRET", "sealing-key-hunter3")]),
    )
    .unwrap();
    assert!(c.server.session_secret.is_some());
    let dbg = format!("{c:?} {:?}", c.server);
    assert!(!dbg.contains("hunter3"), "{dbg}");
}

#[test]
fn roles_and_digests_are_parsed_while_loading_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let entry = |sha: &str, role: &str| {
        format!("[[auth.tokens]]\nname = \"agent\"\nsha256 = \"{sha}\"\nrole = \"{role}\"\n")
    };
    let good = "ab".repeat(32);
    std::fs::write(&path, entry(&good, "viewer")).unwrap();
    let c = Config::load_from(Some(&path), &[]).unwrap();
    assert_eq!(c.auth.tokens[0].role, crate::policy::Role::Viewer);
    assert_eq!(c.auth.tokens[0].sha256.to_hex(), good);

    std::fs::write(&path, entry(&good, "root")).unwrap();
    let err = Config::load_from(Some(&path), &[]).unwrap_err().to_string();
    assert!(
        err.contains("role") && err.contains("root") && err.contains("viewer"),
        "{err}"
    );
    std::fs::write(&path, entry("not-hex", "viewer")).unwrap();
    let err = Config::load_from(Some(&path), &[]).unwrap_err().to_string();
    assert!(
        err.contains("sha256") && err.contains("not-hex") && err.contains("hash-key"),
        "{err}"
    );
}

#[test]
fn kasm_user_ids_are_checked_without_the_kasm_client() {
    let ok = [
        "0123456789abcdef0123456789ABCDEF",
        "01234567-89ab-cdef-0123-456789abcdef",
        " 0123456789abcdef0123456789abcdef ",
    ];
    for id in ok {
        assert!(super::kasm::is_kasm_uuid(id), "{id}");
    }
    let bad = [
        "bob",
        "{01234567-89ab-cdef-0123-456789abcdef}",
        "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
        "0123456789abcdef0123456789abcdeg",
        "0123-456789abcdef0123456789abcdef",
    ];
    for id in bad {
        assert!(!super::kasm::is_kasm_uuid(id), "{id}");
        // The kasm client refuses the same values.
        assert!(crate::kasm::normalize_id("x", id).is_err(), "{id}");
    }
    for id in ok {
        assert!(crate::kasm::normalize_id("x", id).is_ok(), "{id}");
    }
}
