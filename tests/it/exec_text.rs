//! Results a model can read, against `kasm-mcp demo` (the real binary: the App, its relay and
//! the simulator running the wrapper in a sandbox): the text content of exec results next to
//! the unchanged `structuredContent` (and of the file tools), the examples in `docs/TOOLS.md`
//! re-run, a command that removes the wrapper's own files, and one policy refusal moving one
//! metric series by one.

use std::time::{Duration, Instant};

use kasm_mcp::tools::exec_examples::EXAMPLES;
use serde_json::{Value, json};

use crate::ops::{Demo, Modern, scrape, series, structured};

/// The text blocks of a `tools/call` response.
fn texts(response: &Value) -> Vec<String> {
    response["result"]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {response}"))
        .iter()
        .map(|block| {
            assert_eq!(block["type"], "text", "{response}");
            block["text"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// `block` with its measured duration replaced (the one part that differs between runs).
fn without_duration(block: &str) -> String {
    block
        .lines()
        .map(|line| {
            if line.starts_with("Duration: ") {
                "Duration: <measured>"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn new_session(modern: &Modern) -> String {
    let created = modern
        .call(2, "create_kasm_session", json!({"image_name": "Terminal"}))
        .await;
    structured(&created)["kasm_id"].as_str().unwrap().to_owned()
}

async fn exec(modern: &Modern, kasm_id: &str, mut arguments: Value) -> Value {
    arguments["kasm_id"] = json!(kasm_id);
    modern.call(3, "execute_kasm_command", arguments).await
}

#[tokio::test]
async fn exec_results_read_as_text_and_keep_the_machine_form() {
    let demo = Demo::start();
    let modern = Modern::connect(&demo).await;
    let kasm_id = new_session(&modern).await;

    // A non-zero exit is a normal result: its code, then stdout and stderr as plain text.
    let r = exec(
        &modern,
        &kasm_id,
        json!({"command": "echo hello; echo oops >&2; exit 3"}),
    )
    .await;
    let s = structured(&r);
    assert_eq!(
        (&s["exit_code"], &s["stdout"], &s["stderr"]),
        (&json!(3), &json!("hello\n"), &json!("oops\n")),
        "{r}"
    );
    let t = texts(&r);
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(
        t[0].starts_with("Exit code: 3 (non-zero: the command reported a failure)\nDuration: "),
        "{t:?}"
    );
    assert_eq!(t[1], "stdout (6 bytes):\nhello\n");
    assert_eq!(t[2], "stderr (5 bytes):\noops\n");
    assert!(
        t.iter().all(|b| !b.contains("\"exit_code\"")),
        "no JSON: {t:?}"
    );

    let r = exec(&modern, &kasm_id, json!({"command": "true"})).await;
    let t = texts(&r);
    assert_eq!(
        (t[0].lines().next(), t[1].as_str(), t[2].as_str()),
        (Some("Exit code: 0"), "stdout: empty", "stderr: empty")
    );

    // Not UTF-8: readable text with U+FFFD, the exact bytes in structuredContent.
    let r = exec(&modern, &kasm_id, json!({"command": r"printf 'caf\351\n'"})).await;
    assert_eq!(structured(&r)["stdout_base64"], "Y2Fm6Qo=", "{r}");
    assert_eq!(
        texts(&r)[1],
        "stdout (5 bytes; not valid UTF-8: undecodable bytes are shown as \u{FFFD}, the exact bytes are in structuredContent.stdout_base64):\ncaf\u{FFFD}\n"
    );
    let r = exec(
        &modern,
        &kasm_id,
        json!({"command": r"printf '\211PNG\r\n\032\n\000\000\377\376'"}),
    )
    .await;
    assert!(structured(&r)["stdout_base64"].is_string(), "{r}");
    assert!(
        texts(&r)[1].starts_with("stdout (12 bytes): binary data, not shown as text."),
        "{r}"
    );

    // A timeout is stated with the limit and how to raise it.
    let r = exec(
        &modern,
        &kasm_id,
        json!({"command": "echo before; sleep 30", "timeout_s": 1}),
    )
    .await;
    assert_eq!(structured(&r)["timed_out"], true, "{r}");
    let t = texts(&r);
    assert!(
        t[0].starts_with("Timed out: the command ran longer than timeout_s (1 s) and was killed"),
        "{t:?}"
    );
    assert_eq!(t[1], "stdout (7 bytes):\nbefore\n");
}

#[tokio::test]
async fn the_exec_examples_in_tools_md_are_what_the_demo_returns() {
    let demo = Demo::start();
    let modern = Modern::connect(&demo).await;
    let kasm_id = new_session(&modern).await;
    for example in EXAMPLES {
        let arguments: Value = serde_json::from_str(example.arguments).unwrap();
        let r = exec(&modern, &kasm_id, arguments).await;
        assert_eq!(r["result"]["isError"], false, "{}: {r}", example.title);
        let got: Vec<String> = texts(&r).iter().map(|b| without_duration(b)).collect();
        let documented: Vec<String> = example
            .content
            .iter()
            .map(|b| without_duration(b))
            .collect();
        assert_eq!(
            got, documented,
            "{}: the demo's answer differs from docs/TOOLS.md (src/tools/exec_examples.rs)",
            example.title
        );
    }
}

#[tokio::test]
async fn a_command_that_removes_the_wrappers_files_is_told_so_at_once() {
    let demo = Demo::start();
    let modern = Modern::connect(&demo).await;
    let kasm_id = new_session(&modern).await;
    let started = Instant::now();
    // The wrapper's work directory is kmcp-new.* (a streaming job) or kmcp.* under $TMPDIR or
    // /tmp (the session's own /tmp in the simulator's sandbox). Not kmcp*: that also removes
    // the spill directory kmcp-job.*, where the exit code is kept, and the answer is then
    // "exit status and output are unknown" (pinned in src/tools/relay_loss.rs).
    let r = exec(
        &modern,
        &kasm_id,
        json!({"command": "cd \"${TMPDIR:-/tmp}\" && rm -r kmcp-new.* kmcp.*; exit 4", "timeout_s": 30}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let message = texts(&r).join("\n");
    assert!(
        message.starts_with("the command ran and exited with code 4, but it removed the files the output collector needed, so its output is lost"),
        "{message}"
    );
    assert!(
        !message.contains("malformed") && !message.contains("no upload at all"),
        "{message}"
    );
    // Reported by the wrapper, not found out at the relay deadline (timeout_s + grace).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The session still works: the next command makes a new work directory.
    let r = exec(&modern, &kasm_id, json!({"command": "echo again"})).await;
    assert_eq!(structured(&r)["stdout"], "again\n", "{r}");
}

/// Every `kasm_mcp_policy_refusals_total` series, summed, and the one labelled `rule`.
fn refusals(metrics: &str, rule: &str) -> (f64, f64) {
    let name = "kasm_mcp_policy_refusals_total";
    (
        series(metrics, name, &[]),
        series(metrics, name, &[("rule", rule)]),
    )
}

#[tokio::test]
async fn one_policy_refusal_moves_one_series_by_exactly_one() {
    let demo = Demo::start();
    let modern = Modern::connect(&demo).await;
    let http = reqwest::Client::new();
    let kasm_id = new_session(&modern).await;
    let refused = [
        (
            "exec_user",
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "id", "user": "root"}),
        ),
        (
            "allowed_roots",
            "read_kasm_file",
            json!({"kasm_id": kasm_id, "file_path": "/etc/passwd"}),
        ),
        ("tool_access", "no_such_tool", json!({})),
    ];
    for (rule, tool, arguments) in refused {
        let before = scrape(&http, &demo.base).await;
        let response = modern.call(9, tool, arguments).await;
        assert!(
            response["result"]["isError"] == true || response.get("error").is_some(),
            "{tool} was not refused: {response}"
        );
        let after = scrape(&http, &demo.base).await;
        let (total_before, rule_before) = refusals(&before, rule);
        let (total_after, rule_after) = refusals(&after, rule);
        assert_eq!(
            (total_after - total_before, rule_after - rule_before),
            (1.0, 1.0),
            "{tool}: one refusal must add exactly 1 to rule={rule} and nothing elsewhere:\n{after}"
        );
    }
}

#[tokio::test]
async fn file_results_read_as_text_and_keep_the_machine_form() {
    let demo = Demo::start();
    let modern = Modern::connect(&demo).await;
    let kasm_id = new_session(&modern).await;
    let path = "/home/kasm-user/notes/todo.txt";
    let written = modern
        .call(
            4,
            "write_kasm_file",
            json!({"kasm_id": kasm_id, "file_path": path, "content": "one\n\"two\"\n",
                   "create_parents": true}),
        )
        .await;
    let sha = structured(&written)["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        texts(&written),
        [format!(
            "Wrote 10 bytes to {path} (sha256 {sha}; the session computed the same sha256 after the write)."
        )]
    );
    let read = modern
        .call(
            5,
            "read_kasm_file",
            json!({"kasm_id": kasm_id, "file_path": path}),
        )
        .await;
    assert_eq!(structured(&read)["content"], "one\n\"two\"\n", "{read}");
    assert_eq!(
        texts(&read),
        [
            format!("{path}: 10 bytes of UTF-8 text, sha256 {sha}; the next block is the content"),
            "one\n\"two\"\n".to_owned()
        ]
    );
    let listed = modern
        .call(
            6,
            "list_kasm_files",
            json!({"kasm_id": kasm_id, "path": "/home/kasm-user/notes"}),
        )
        .await;
    assert_eq!(structured(&listed)["entries"][0]["name"], "todo.txt");
    assert_eq!(
        texts(&listed),
        ["/home/kasm-user/notes: 1 entry\ntodo.txt  10 bytes"]
    );
}

/// The live (not zombie) children of `pid` that run `comm`.
fn children_named(pid: u32, comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let Some((head, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut f = rest.split_whitespace();
            let state = f.next();
            let parent = f.next().and_then(|p| p.parse::<u32>().ok());
            head.ends_with(&format!("({comm}")) && state != Some("Z") && parent == Some(pid)
        })
        .collect()
}

/// Stopping the demo (dropping it, as every test here does) ends its sessions' sandbox
/// holders too: none outlives it re-parented to init.
#[tokio::test]
async fn a_stopped_demo_leaves_no_sandbox_holder_behind() {
    let demo = Demo::start();
    let modern = Modern::connect(&demo).await;
    let kasm_id = new_session(&modern).await;
    let r = exec(&modern, &kasm_id, json!({"command": "true"})).await;
    assert_eq!(structured(&r)["exit_code"], json!(0), "{r}");
    let holders = children_named(u32::try_from(demo.pid()).unwrap(), "bwrap");
    if holders.is_empty() {
        // No bwrap here: the simulator runs commands without a sandbox holder.
        return;
    }
    drop(modern);
    drop(demo);
    let gone = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    let left: Vec<u32> = holders.iter().copied().filter(|p| !gone(p)).collect();
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert!(left.is_empty(), "sandbox holders left running: {left:?}");
}
