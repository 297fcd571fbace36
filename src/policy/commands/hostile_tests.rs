//! Verdicts on hostile command texts, judged on a thread with a small stack: every nesting
//! shape at the exec tool's 100 KiB limit, and the characters that made tree-sitter-bash's
//! scanner read out of bounds (SIGSEGV). Each case asserts the decision and the reason, not
//! only that the process survived.

use super::engine::{CommandPolicy, CommandsSpec, Scope, UNRESOLVED_RULE, Verdict};
use super::model::Decision;
use super::rules::{PatternElement, RuleSpec};
use crate::policy::Role;

/// The longest command `execute_kasm_command` accepts (`tools::exec::MAX_COMMAND_BYTES`).
const LIMIT: usize = 100 * 1024;
/// Less than the 2 MiB of a tokio worker or a spawned thread, so the bound has a margin.
const STACK: usize = 256 * 1024;

fn policy() -> CommandPolicy {
    let rm = RuleSpec {
        id: "rm".into(),
        decision: Decision::Deny,
        reason: "no rm".into(),
        pattern: vec![PatternElement::One("rm".into())],
        args: vec![],
        unless_args: vec![],
        last_arg: vec![],
        piped_from: vec![],
        redirect_to: vec![],
        roles: vec![],
        images: vec![],
        examples: vec![],
        not_match: vec![],
    };
    let spec = CommandsSpec {
        rules: vec![rm],
        ..CommandsSpec::default()
    };
    match CommandPolicy::compile(&spec, &[]) {
        Ok(policy) => policy,
        Err(e) => panic!("test policy: {e}"),
    }
}

/// `open` repeated, `middle`, `close` repeated: as many levels as fit in [`LIMIT`] bytes.
fn nest(open: &str, middle: &str, close: &str) -> String {
    let levels = (LIMIT - middle.len()) / (open.len() + close.len());
    format!("{}{middle}{}", open.repeat(levels), close.repeat(levels))
}

/// Judge every text on a thread with a [`STACK`]-byte stack.
fn judge_all(texts: Vec<String>) -> Vec<(String, Verdict)> {
    let judged = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let policy = policy();
            let scope = Scope {
                role: Role::Operator,
                image: &[],
            };
            texts
                .into_iter()
                .map(|text| {
                    let verdict = policy.evaluate(&text, scope);
                    (text, verdict)
                })
                .collect::<Vec<_>>()
        })
        .map(|thread| thread.join());
    match judged {
        Ok(Ok(judged)) => judged,
        _ => panic!("the judging thread failed"),
    }
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

#[test]
fn every_nesting_shape_at_100_kib_is_unresolved() {
    let shapes = vec![
        nest("(", "rm -rf /", ")"),
        nest("$(", "rm -rf /", ")"),
        nest("{ ", "rm -rf /", "; }"),
        nest("\"$(", "rm -rf /", ")\""),
        nest("${a:-", "x", "}"),
        nest("<(", "rm -rf /", ")"),
        nest("if a; then ", "rm -rf /", "; fi"),
        nest("while a; do ", "rm -rf /", "; done"),
        nest("for i in a; do ", "rm -rf /", "; done"),
        nest("case a in a) ", "rm -rf /", ";; esac "),
        nest("true && ", "rm -rf /", ""),
        format!("echo $(({}1))", "1+".repeat((LIMIT - 12) / 2)),
        format!("echo $(({}1))", "-".repeat(LIMIT - 12)),
        format!("[[ {}a ]]", "! ".repeat((LIMIT - 8) / 2)),
    ];
    for (text, verdict) in judge_all(shapes) {
        assert!(
            text.len() <= LIMIT && text.len() > LIMIT - 64,
            "{}",
            short(&text)
        );
        assert_eq!(
            verdict.decision,
            Decision::Confirm,
            "{}: {verdict:?}",
            short(&text)
        );
        let decisive = verdict.decisive();
        assert!(
            decisive
                .is_some_and(|f| f.rule_id == UNRESOLVED_RULE && f.reason.contains("levels deep")),
            "{}: {decisive:?}",
            short(&text)
        );
    }
    // Within the bound, nesting is followed all the way down to the `rm`.
    let followed = judge_all(vec![
        format!("{}rm -rf /{}", "( ".repeat(200), " )".repeat(200)),
        format!("{}rm -rf /", "true && ".repeat(200)),
    ]);
    for (text, verdict) in followed {
        assert_eq!(
            verdict.decision,
            Decision::Deny,
            "{}: {verdict:?}",
            short(&text)
        );
    }
}

#[test]
fn characters_that_crashed_the_scanner_are_judged() {
    let cases: &[(&str, Decision, &str)] = &[
        // An unclosed group: a syntax error, so unresolved.
        ("{\u{E0100}", Decision::Confirm, UNRESOLVED_RULE),
        ("{12\u{E01EF}", Decision::Confirm, UNRESOLVED_RULE),
        ("echo {1..\u{E0100}}", Decision::Allow, ""),
        ("echo {\u{10FFFD}..1} ok", Decision::Allow, ""),
        ("rm -rf / {\u{E0100}", Decision::Deny, "rm"),
        ("echo ${\u{E0100}} && rm -rf /", Decision::Deny, "rm"),
        ("x={1..\u{E0100}}; rm x", Decision::Deny, "rm"),
        // Two delimiters that read alike once the character is replaced: the parser would end
        // the here-document at `{xxxx`, and the quote after it would hide the `rm`.
        (
            "cat <<{\u{E0100}\n{xxxx\n'\n{\u{E0100}\nrm -rf /\n'",
            Decision::Confirm,
            UNRESOLVED_RULE,
        ),
    ];
    let texts = cases.iter().map(|(text, _, _)| text.to_string()).collect();
    for ((text, verdict), (_, want, rule)) in judge_all(texts).into_iter().zip(cases) {
        assert_eq!(verdict.decision, *want, "{text:?}: {verdict:?}");
        if !rule.is_empty() {
            assert_eq!(
                verdict.decisive().map(|f| f.rule_id.as_str()),
                Some(*rule),
                "{text:?}: {verdict:?}"
            );
        }
    }
}
