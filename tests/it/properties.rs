//! Property tests (proptest, bounded case counts so they run in seconds): the command
//! extractor and policy never panic and stay fast on arbitrary text and keep denying a denied
//! command however it is quoted or wrapped; the path normaliser's output is normal and
//! idempotent; the JSON-RPC envelope classifier never panics and keeps what it is given.

use std::time::{Duration, Instant};

use kasm_mcp::config::CommandsConfig;
use kasm_mcp::mcp::jsonrpc::{Incoming, RequestId, classify};
use kasm_mcp::policy::Role;
use kasm_mcp::policy::commands::{Decision, Scope, extract};
use kasm_mcp::policy::paths::{check_path, normalize_absolute};
use proptest::prelude::*;
use serde_json::{Value, json};

fn scope() -> Scope<'static> {
    Scope {
        role: Role::Operator,
        image: &[],
    }
}

/// Shell-flavoured text: the characters that change parsing, plus words.
fn shellish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("rm".to_string()),
            Just("sh -c ".to_string()),
            Just("sudo ".to_string()),
            Just("$(".to_string()),
            Just("${".to_string()),
            Just("<<EOF\n".to_string()),
            "[ a-z/\\-$(){}`'\"\\\\;|&<>=*~#!\n]{1,6}",
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// `word` with its characters split by empty quotes or escaped, or the whole word quoted.
fn quoted(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..5, word.chars().count()).prop_map(move |styles| {
        word.chars()
            .zip(styles)
            .map(|(c, style)| match style {
                0 => c.to_string(),
                1 => format!("{c}''"),
                2 => format!("\"{c}\""),
                3 if c.is_ascii_alphanumeric() => format!("\\{c}"),
                _ => format!("'{c}'"),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_extractor_never_panics_and_is_fast(text in shellish()) {
        let started = Instant::now();
        let _ = extract(&text);
        let policy = CommandsConfig::default();
        let _ = policy.policy().evaluate(&text, scope());
        prop_assert!(started.elapsed() < Duration::from_secs(2), "{text:?}");
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,300}") {
        let _ = CommandsConfig::default().policy().evaluate(&text, scope());
    }

    /// tree-sitter-bash's scanner passes the character after `{` (and after `{N..`) to
    /// `isdigit`; one far above U+00FF read out of bounds (SIGSEGV) before the parser got a
    /// scanner-safe copy. `\PC` alone rarely puts such a character right after `{`.
    #[test]
    fn any_character_after_a_brace_is_judged(
        parts in prop::collection::vec(
            ("[ a-z;]{0,3}[{][0-9]{0,2}([.][.][0-9]{0,2})?", prop::char::range('\u{80}', '\u{10FFFF}')),
            1..8,
        )
    ) {
        let text: String = parts.iter().map(|(before, c)| format!("{before}{c}")).collect();
        let _ = CommandsConfig::default().policy().evaluate(&text, scope());
    }

    #[test]
    fn a_denied_command_stays_denied_however_it_is_quoted_or_wrapped(
        program in quoted("rm"),
        flags in quoted("-rf"),
        wrapper in prop::sample::select(vec![
            "", "sudo ", "sudo -u root ", "env X=1 ", "nice -n 5 ", "nohup ", "timeout 5 ",
            "command ", "exec ", "busybox ", "/usr/bin/env ", "stdbuf -oL ", "time ",
        ]),
        around in prop::sample::select(vec![
            "{}", "echo ok; {}", "true && {}", "false || {}", "({})", "{ {}; }",
            "sh -c '{}'", "bash -lc \"{}\"", "echo $({})", "x=`{}`", "ls | {}",
        ]),
    ) {
        let command = format!("{wrapper}{program} {flags} /");
        let text = around.replace("{}", &command);
        let policy = CommandsConfig::default();
        let verdict = policy.policy().evaluate(&text, scope());
        prop_assert_eq!(verdict.decision, Decision::Deny, "{} → {:?}", text, verdict);
    }

    #[test]
    fn normalised_paths_are_normal_and_idempotent(raw in "[/a-z.\\-]{0,40}") {
        if let Ok(path) = normalize_absolute(&raw) {
            prop_assert!(path.starts_with('/'));
            prop_assert!(!path.contains("//"), "{path}");
            prop_assert!(path == "/" || !path.ends_with('/'), "{path}");
            prop_assert!(path.split('/').all(|c| c != "." && c != ".."), "{path}");
            let again = normalize_absolute(&path);
            prop_assert_eq!(again.as_deref(), Ok(path.as_str()));
        }
        let roots = vec!["/home/kasm-user".to_string()];
        if let Ok(inside) = check_path(&raw, &roots) {
            prop_assert!(inside == "/home/kasm-user" || inside.starts_with("/home/kasm-user/"));
        }
    }

    #[test]
    fn the_path_normaliser_never_panics(raw in "\\PC{0,200}") {
        let _ = check_path(&raw, &["/".to_string()]);
    }

    #[test]
    fn the_envelope_classifier_never_panics(value in json_value()) {
        let _ = classify(&value);
        let _ = classify(&json!({"jsonrpc": "2.0", "id": value.clone(), "method": "m"}));
        let _ = classify(&json!({"jsonrpc": "2.0", "id": 1, "method": "m", "params": value.clone()}));
        let _ = classify(&json!({"jsonrpc": "2.0", "id": "x", "result": value}));
    }

    #[test]
    fn requests_keep_their_id_method_and_params(
        id in prop_oneof![any::<i64>().prop_map(|n| json!(n)), "\\PC{0,20}".prop_map(|s| json!(s))],
        method in "\\PC{1,30}",
        params in prop::option::of(json_object()),
    ) {
        let mut message = json!({"jsonrpc": "2.0", "id": id.clone(), "method": method.clone()});
        if let Some(p) = &params {
            message["params"] = p.clone();
        }
        match classify(&message) {
            Incoming::Request { id: got, method: m, params: p } => {
                prop_assert_eq!(Some(got), RequestId::from_json(&id));
                prop_assert_eq!(m, method);
                prop_assert_eq!(p, params);
            }
            other => prop_assert!(false, "{message} → {other:?}"),
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}
