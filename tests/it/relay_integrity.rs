//! Integration tests of the relay's integrity (issue "Relay integrity") and the wrapper's
//! hardening: results only the wrapper can report, output capture that survives background
//! processes, byte-exact commands and paths, a caller's `env` that reaches the command only,
//! uploads retried within the deadline, temp files of killed wrappers cleaned up, and input
//! sizes refused with clear errors. Tool-level tests use the real catalog against the
//! simulator with bwrap (see `tools`); wrapper-level tests run the real scripts on this host
//! against the real relay routes, where the test can play the attacker.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use kasm_mcp::config::{CommandsConfig, PolicyConfig};
use kasm_mcp::policy::commands::{CommandsSpec, Decision};
use kasm_mcp::policy::env::EnvNamePolicy;
use kasm_mcp::relay::frame::{ExecReport, parse_frame, parse_write};
use kasm_mcp::relay::wrapper::{CommandJob, Endpoint, Job, Tickets, WrapperInput, WriteJob};
use kasm_mcp::relay::{KEY_HEADER, Purpose, Relay, RelayOptions, TicketBinding};
use serde_json::json;

use crate::tools::{Rig, rig_with, text_of};

// ---- tool-level harness ---------------------------------------------------------------------

/// The default policy without the command rules: these tests are about the relay and the
/// wrapper, not about which commands the rules let through (`command_policy` tests those).
fn relay_policy() -> PolicyConfig {
    let commands = CommandsConfig::try_from(CommandsSpec {
        default_rules: false,
        unresolved: Some(Decision::Allow),
        ..CommandsSpec::default()
    })
    .unwrap();
    PolicyConfig {
        commands,
        ..PolicyConfig::default()
    }
}

/// The real catalog over the simulator and the real relay, under [`relay_policy`].
async fn rig() -> Rig {
    rig_with(relay_policy(), true).await
}

// ---- wrapper-level harness ------------------------------------------------------------------

/// The real relay routes on a loopback listener.
pub(crate) async fn host_relay() -> Arc<Relay> {
    let relay = Arc::new(Relay::new(RelayOptions::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    relay.set_base_url(format!("http://{}", listener.local_addr().unwrap()));
    let app = kasm_mcp::transport::relay::routes(relay.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    relay
}

pub(crate) fn binding(purpose: Purpose) -> TicketBinding {
    TicketBinding {
        principal: "t".into(),
        kasm_id: "k".into(),
        purpose,
    }
}

fn exec_job(command: &str, timeout_s: u64, cap: usize) -> Job {
    Job::Exec(CommandJob {
        command: command.into(),
        cwd: None,
        timeout_s,
        cap,
        env: BTreeMap::new(),
        cancel_tag: None,
    })
}

pub(crate) fn endpoint(url: &str, key: &str) -> Endpoint {
    Endpoint {
        url: url.into(),
        key: key.into(),
    }
}

/// Start a wrapper on this host in its own process group, with `path` as PATH and `tmp` as
/// TMPDIR (the exec's environment as Kasm would set it).
pub(crate) fn spawn_wrapper(input: &WrapperInput, path: &str, tmp: &Path) -> tokio::process::Child {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(input.script().text())
        .env_clear()
        .env("PATH", path)
        .env("TMPDIR", tmp)
        .env("HOME", tmp)
        .envs(input.environment())
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn host_path() -> String {
    std::env::var("PATH").unwrap()
}

/// Live (not zombie) processes in process group `pgid` with one of these command names.
pub(crate) fn group_members(pgid: u32, names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let live = fields.first() != Some(&"Z");
        if live && fields.get(2) == Some(&pgid.to_string().as_str()) && names.contains(&comm) {
            found.push(format!("{comm} {}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Whether any live (not zombie) process is left in process group `pgid`.
pub(crate) fn group_alive(pgid: u32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                Some(
                    fields.first() != Some(&"Z")
                        && fields.get(2) == Some(&pgid.to_string().as_str()),
                )
            })
            .unwrap_or(false)
    })
}

fn kill_group(pgid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
}

// ---- 1. results only the wrapper can report --------------------------------------------------

/// The forging command from the issue: it reads its grandparent's environment for the
/// ticket and POSTs a forged record to it. It finds no ticket; its real result comes back.
#[tokio::test]
async fn a_command_that_tries_to_forge_its_result_gets_its_real_result() {
    let rig = rig().await;
    let id = rig.session().await;
    let forge = r#"A=$(awk '{print $4}' /proc/$PPID/stat); U=$(tr '\0' '\n' </proc/$A/environ | sed -n 's/^KMCP_URL=//p'); printf 'EXEC 0 0 1 7 0 0\nFORGED\n' >/tmp/forge; curl -s -X POST --data-binary @/tmp/forge "$U"; echo real-output; exit 3"#;
    let r = rig.exec(&id, forge, json!({})).await;
    assert_eq!(r["exit_code"], 3, "{r}");
    assert_eq!(r["stdout"], "real-output\n", "{r}");
}

/// A command that reads every `/proc/*/environ` and `/proc/*/cmdline` it can (on a real Kasm
/// all execs share one process namespace; here it sees its own wrapper and itself) finds
/// no relay URL and no ticket variable; the scan demonstrably reads the wrapper's entries.
#[tokio::test]
async fn no_process_the_command_can_read_holds_a_ticket() {
    let rig = rig().await;
    let id = rig.session().await;
    // The patterns are assembled at run time so the command's own text (visible in the
    // wrapper's environment) does not match them.
    let scan = r#"r=relay; t=KMCP; w=kasm-mcp; w=$w-wrapper
n=0
for p in /proc/[0-9]*; do
  for f in environ cmdline; do
    if tr '\0' '\n' < "$p/$f" > /tmp/scan 2>/dev/null; then
      n=$((n + 1))
      grep -E -e "/$r/[A-Za-z0-9_-]{40}" -e "^${t}_(TICKETS|URL)=" /tmp/scan | sed "s|^|$p/$f: |"
      [ "$f" = cmdline ] && grep -q -e "$w" /tmp/scan && echo "saw-wrapper $p/$f"
    fi
  done
done
echo "read $n"
for fd in /proc/[0-9]*/fd/*; do
  case $(readlink "$fd") in pipe:*) timeout 1 cat "$fd" 2>/dev/null | grep -E "/$r/[A-Za-z0-9_-]{40}" | sed "s|^|$fd: |" ;; esac
done
true"#;
    let r = rig.exec(&id, scan, json!({})).await;
    let out = r["stdout"].as_str().unwrap();
    assert!(!out.contains("/relay/"), "ticket visible: {out}");
    assert!(!out.contains("KMCP_"), "ticket variable visible: {out}");
    assert!(
        out.contains("saw-wrapper"),
        "the scan reached the wrapper: {out}"
    );
    let read: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("read "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(read >= 4, "{out}");
}

/// Whoever learns a ticket's URL (a leaked log line, a racing process) still cannot forge
/// the result: a POST without the ticket's key is refused with 403, does not use the
/// ticket up, and the wrapper's real result arrives.
#[tokio::test]
async fn a_forged_post_to_a_stolen_ticket_url_is_refused_and_the_real_result_arrives() {
    let relay = host_relay().await;
    let mut ticket = relay
        .expect_upload(binding(Purpose::ExecResult), 4096, Duration::from_secs(60))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = WrapperInput {
        job: exec_job("sleep 1; echo real-output; exit 3", 10, 1001),
        tickets: Some(Tickets {
            upload: endpoint(ticket.url(), ticket.key()),
            download: None,
            stream: None,
        }),
        budget_s: 30,
        stale_after_s: 700,
    };
    let mut child = spawn_wrapper(&input, &host_path(), tmp.path());
    let http = reqwest::Client::new();
    for key in [None, Some("guessed")] {
        let mut req = http.post(ticket.url()).body("EXEC 0 0 1 7 0 0\nFORGED\n");
        if let Some(key) = key {
            req = req.header(KEY_HEADER, key);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    }
    let body = tokio::time::timeout(Duration::from_secs(30), ticket.received())
        .await
        .expect("the real result arrived")
        .unwrap();
    let report = ExecReport::parse(&parse_frame(body).unwrap()).unwrap();
    assert_eq!(report.exit_code, 3);
    assert_eq!(&report.stdout[..], b"real-output\n");
    let _ = child.wait().await;
}

// ---- 2. background writers ----------------------------------------------------------------------

const BACKGROUND_WRITER: &str = r#"(i=0; while [ $i -lt 1500 ]; do printf "%0999d\n" $i; i=$((i+1)); sleep 0.004; done) & echo started"#;

/// Through the tool: a well-formed result that says it is incomplete.
#[tokio::test]
async fn a_background_writer_yields_a_well_formed_result_marked_incomplete() {
    let rig = rig().await;
    let id = rig.session().await;
    let r = rig
        .exec(
            &id,
            BACKGROUND_WRITER,
            json!({"max_output_bytes": 1_048_576}),
        )
        .await;
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["output_incomplete"], true, "{}", r["note"]);
    let stdout = r["stdout"].as_str().unwrap();
    // The writer and `echo started` race for the first line.
    assert!(
        stdout.contains("started\n"),
        "{}",
        &stdout[..40.min(stdout.len())]
    );
    assert!(
        r["note"]
            .as_str()
            .unwrap()
            .contains("left processes running")
    );
    let quiet = rig.exec(&id, "echo done", json!({})).await;
    assert_eq!(quiet["output_incomplete"], false);
}

/// On the host (no pid namespace to hide leftovers): after the result, none of the
/// wrapper's reader processes is left in its process group — only the user's writer.
#[tokio::test]
async fn a_background_writer_leaves_no_wrapper_process_behind() {
    let relay = host_relay().await;
    let mut ticket = relay
        .expect_upload(
            binding(Purpose::ExecResult),
            3 * 1024 * 1024,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = WrapperInput {
        job: exec_job(BACKGROUND_WRITER, 30, 1_048_577),
        tickets: Some(Tickets {
            upload: endpoint(ticket.url(), ticket.key()),
            download: None,
            stream: None,
        }),
        budget_s: 60,
        stale_after_s: 700,
    };
    let mut child = spawn_wrapper(&input, &host_path(), tmp.path());
    let pgid = child.id().unwrap();
    let body = tokio::time::timeout(Duration::from_secs(30), ticket.received())
        .await
        .expect("a result arrived")
        .unwrap();
    let report = ExecReport::parse(&parse_frame(body).expect("well-formed")).expect("well-formed");
    assert!(report.incomplete, "the writer was still writing");
    let stdout = String::from_utf8_lossy(&report.stdout);
    assert!(
        stdout.contains("started\n"),
        "{}",
        &stdout[..40.min(stdout.len())]
    );
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = group_members(pgid, &["head", "cat", "kasm-mcp-wrapper", "timeout"]);
    kill_group(pgid);
    assert!(left.is_empty(), "wrapper processes left: {left:?}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- 3. commands starting with - or + -----------------------------------------------------------

#[tokio::test]
async fn commands_starting_with_a_dash_or_plus_run_as_commands() {
    let rig = rig().await;
    let id = rig.session().await;
    let r = rig.exec(&id, "+x; echo plus", json!({})).await;
    assert_eq!(r["stdout"], "plus\n", "{r}");
    for cmd in ["-x", "--version"] {
        let r = rig.exec(&id, cmd, json!({})).await;
        assert_eq!(r["exit_code"], 127, "{cmd}: {r}");
        let err = r["stderr"].as_str().unwrap();
        assert!(
            err.contains(cmd) && err.contains("not found"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("requires an argument") && !err.contains("Illegal option"));
    }
    // Dispatch-only mode (no relay) runs such a command as well.
    let rig = rig.with_deps(|d| d.relay = None);
    let out = rig
        .call(
            "execute_kasm_command",
            json!({"kasm_id": id, "command": "+x; echo plus > /home/kasm-user/plus.txt"}),
        )
        .await;
    assert!(!out.is_error, "{}", text_of(&out));
    // Dispatch-only mode does not wait for the command: the shell creates the file before
    // `echo` writes into it, so wait for the content, not for the file to exist.
    let file = rig.home(&id).join("plus.txt");
    let started = Instant::now();
    let mut content = String::new();
    while content != "plus\n" && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        content = std::fs::read_to_string(&file).unwrap_or_default();
    }
    assert_eq!(content, "plus\n");
}

// ---- 4. control characters in paths ---------------------------------------------------------------

#[tokio::test]
async fn paths_with_control_characters_are_refused_and_touch_nothing() {
    let rig = rig().await;
    let id = rig.session().await;
    let home = rig.home(&id);
    std::fs::write(home.join("b"), "plain b").unwrap();
    std::fs::write(home.join("b\n"), "b with newline").unwrap();
    std::fs::create_dir(home.join("d")).unwrap();
    let before: Vec<_> = walk(&home);
    for (tool, args) in [
        (
            "read_kasm_file",
            json!({"file_path": "/home/kasm-user/b\n"}),
        ),
        (
            "write_kasm_file",
            json!({"file_path": "/home/kasm-user/d\n/f", "content": "x"}),
        ),
        (
            "write_kasm_file",
            json!({"file_path": "/home/kasm-user/b\n", "content": "x"}),
        ),
        ("list_kasm_files", json!({"path": "/home/kasm-user/d\n"})),
        (
            "read_kasm_file",
            json!({"file_path": "/home/kasm-user/b\t"}),
        ),
    ] {
        let mut args = args;
        args["kasm_id"] = json!(id);
        let out = rig.call(tool, args.clone()).await;
        assert!(out.is_error, "{tool} {args}");
        let msg = text_of(&out);
        assert!(msg.contains("control character"), "{tool}: {msg}");
    }
    assert_eq!(walk(&home), before, "no file was touched");
    assert_eq!(std::fs::read_to_string(home.join("b")).unwrap(), "plain b");
}

/// The in-container `realpath` keeps a trailing newline of a symlink's target: reading the
/// link reads the file it names, not a sibling without the newline.
#[tokio::test]
async fn a_resolved_path_keeps_its_trailing_newline() {
    let rig = rig().await;
    let id = rig.session().await;
    let home = rig.home(&id);
    std::fs::write(home.join("t"), "plain").unwrap();
    std::fs::write(home.join("t\n"), "newline").unwrap();
    std::os::unix::fs::symlink("/home/kasm-user/t\n", home.join("link")).unwrap();
    let r = rig
        .ok(
            "read_kasm_file",
            json!({"kasm_id": id, "file_path": "/home/kasm-user/link"}),
        )
        .await;
    assert_eq!(r["content"], "newline", "{r}");
}

fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.display().to_string();
        if path.is_dir() {
            out.push((name, Vec::new()));
            out.extend(walk(&path));
        } else {
            out.push((name, std::fs::read(&path).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

// ---- 7. sizes and timeouts -------------------------------------------------------------------------

#[tokio::test]
async fn oversized_env_and_command_are_refused_with_a_clear_error() {
    let rig = rig().await;
    let id = rig.session().await;
    let big = "x".repeat(140 * 1024);
    let out = rig
        .call(
            "execute_kasm_command",
            json!({"kasm_id": id, "command": "true", "env": {"BIG": big}}),
        )
        .await;
    assert!(out.is_error);
    let msg = text_of(&out);
    assert!(msg.contains("env") && msg.contains("122880"), "{msg}");
    let half = "y".repeat(60 * 1024);
    let out = rig
        .call(
            "execute_kasm_command",
            json!({"kasm_id": id, "command": format!("true {half}"), "env": {"A": half}}),
        )
        .await;
    assert!(out.is_error, "command + env together");
    assert!(text_of(&out).contains("122880"));
    // Just under the limit still runs.
    let r = rig
        .exec(
            &id,
            "printf '%s' \"$BIG\" | wc -c",
            json!({"env": {"BIG": "z".repeat(100 * 1024)}}),
        )
        .await;
    assert_eq!(
        r["stdout"].as_str().unwrap().trim(),
        (100 * 1024).to_string()
    );
}

#[tokio::test]
async fn a_timeout_near_u64_max_is_an_error_not_a_panic() {
    let policy = PolicyConfig {
        max_timeout_s: u64::MAX,
        ..relay_policy()
    };
    let rig = rig_with(policy, true).await;
    let id = rig.session().await;
    let out = rig
        .call(
            "execute_kasm_command",
            json!({"kasm_id": id, "command": "true", "timeout_s": u64::MAX}),
        )
        .await;
    assert!(out.is_error);
    assert!(
        text_of(&out).contains("shorter timeout"),
        "{}",
        text_of(&out)
    );
}

// ---- hardening 8. the caller's env reaches the command only -------------------------------------

#[tokio::test]
async fn hostile_path_and_tmpdir_in_env_still_return_the_real_result() {
    // PATH is refused by default (see the next test): allow it here so the hostile value
    // reaches the command and the test proves the wrapper does not depend on it.
    let policy = PolicyConfig {
        env: EnvNamePolicy {
            allowed: vec!["PATH".into()],
            ..EnvNamePolicy::default()
        },
        ..relay_policy()
    };
    let rig = rig_with(policy, true).await;
    let id = rig.session().await;
    let started = Instant::now();
    let r = rig
        .exec(
            &id,
            "echo \"$PATH|$TMPDIR\"; exit 7",
            json!({"env": {"PATH": "/nonexistent", "TMPDIR": "/nonexistent"}, "timeout_s": 5}),
        )
        .await;
    assert_eq!(r["stdout"], "/nonexistent|/nonexistent\n", "{r}");
    assert_eq!(r["exit_code"], 7);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Under the default `[policy.env]` a caller's PATH is refused before anything runs, with the
/// setting that allows it.
#[tokio::test]
async fn the_default_env_policy_refuses_path() {
    let rig = rig().await;
    let id = rig.session().await;
    let out = rig
        .call(
            "execute_kasm_command",
            json!({"kasm_id": id, "command": "echo ran", "env": {"PATH": "/nonexistent"}}),
        )
        .await;
    assert!(out.is_error, "{}", text_of(&out));
    let text = text_of(&out);
    assert!(
        text.contains("PATH may not be set") && text.contains("policy.env.allowed"),
        "{text}"
    );
    assert!(!text.contains("ran"), "{text}");
}

// ---- hardening 9. writing over a symlink ----------------------------------------------------------

#[tokio::test]
async fn writing_over_a_symlink_gives_the_default_or_requested_mode() {
    let rig = rig().await;
    let id = rig.session().await;
    let home = rig.home(&id);
    let tmp = home.parent().unwrap().join("tmp");
    std::fs::write(tmp.join("outside.txt"), "outside").unwrap();
    std::fs::create_dir(home.join("adv")).unwrap();
    std::os::unix::fs::symlink("/tmp/outside.txt", home.join("adv/out")).unwrap();
    std::os::unix::fs::symlink("/tmp/outside.txt", home.join("adv/out2")).unwrap();
    std::fs::set_permissions(
        tmp.join("outside.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let umask_default = {
        let r = rig.exec(&id, "umask", json!({})).await;
        let umask = u32::from_str_radix(r["stdout"].as_str().unwrap().trim(), 8).unwrap();
        0o666 & !umask
    };
    rig.ok(
        "write_kasm_file",
        json!({"kasm_id": id, "file_path": "/home/kasm-user/adv/out", "content": "new"}),
    )
    .await;
    let meta = std::fs::symlink_metadata(home.join("adv/out")).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link was replaced by a file"
    );
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        umask_default,
        "not the link's 777"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.join("outside.txt")).unwrap(),
        "outside"
    );
    rig.ok(
        "write_kasm_file",
        json!({"kasm_id": id, "file_path": "/home/kasm-user/adv/out2", "content": "new", "mode": "600"}),
    )
    .await;
    let meta = std::fs::symlink_metadata(home.join("adv/out2")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
}

// ---- 6. a killed wrapper's temp files ------------------------------------------------------------

/// A download that sends a few bytes and then hangs, so a write is caught mid-way.
async fn stalling_download() -> String {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/relay/stall", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/relay/stall",
        get(|| async {
            let chunks = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"partial"))
            })
            .chain(futures::stream::pending());
            axum::body::Body::from_stream(chunks)
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

use futures::StreamExt;

pub(crate) fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_wrapper_killed_mid_write_leaves_no_temp_file_after_the_next_write() {
    let relay = host_relay().await;
    let target = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = target.path().display().to_string();
    // A `sync` that records what it was asked to sync, then syncs.
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("sync.log");
    let real_sync = which("sync");
    std::fs::write(
        bin.path().join("sync"),
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec {} \"$@\"\n",
            log.display(),
            real_sync
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.path().join("sync"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.path().display(), host_path());
    let write =
        |size: usize, upload: &kasm_mcp::relay::UploadTicket, download: Endpoint| WrapperInput {
            job: Job::Write(WriteJob {
                path: format!("{root}/file.txt"),
                roots: vec![root.clone()],
                size,
                create_parents: false,
                mode: None,
            }),
            tickets: Some(Tickets {
                upload: endpoint(upload.url(), upload.key()),
                download: Some(download),
                stream: None,
            }),
            budget_s: 30,
            stale_after_s: 3600,
        };

    // 1. A write whose download stalls; the wrapper is killed (as a session stop would).
    let upload = relay
        .expect_upload(binding(Purpose::WriteStatus), 1024, Duration::from_secs(60))
        .await
        .unwrap();
    let stall = stalling_download().await;
    let mut child = spawn_wrapper(
        &write(100, &upload, endpoint(&stall, "k")),
        &path,
        tmp.path(),
    );
    let pgid = child.id().unwrap();
    let started = Instant::now();
    while !names_in(target.path())
        .iter()
        .any(|n| n.starts_with(".kmcp-write"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no temp file appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill_group(pgid);
    let _ = child.wait().await;
    // Every process of the killed wrapper is gone (its uploader held the lock too).
    let started = Instant::now();
    while group_alive(pgid) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the group did not die"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        names_in(target.path())
            .iter()
            .any(|n| n.starts_with(".kmcp-write")),
        "the killed wrapper left its temp file (what the next run must clean)"
    );
    assert!(!names_in(tmp.path()).is_empty(), "and its temp dir");

    // 2. The next write to the same directory.
    let mut upload = relay
        .expect_upload(binding(Purpose::WriteStatus), 1024, Duration::from_secs(60))
        .await
        .unwrap();
    let download = relay
        .offer_download(
            binding(Purpose::FileDownload),
            Bytes::from_static(b"complete"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let mut child = spawn_wrapper(
        &write(8, &upload, endpoint(download.url(), download.key())),
        &path,
        tmp.path(),
    );
    let body = tokio::time::timeout(Duration::from_secs(30), upload.received())
        .await
        .expect("the write reported")
        .unwrap();
    let sha = parse_write(&parse_frame(body).unwrap()).unwrap().unwrap();
    assert!(sha.is_some());
    let _ = child.wait().await;
    assert_eq!(names_in(target.path()), vec!["file.txt".to_string()]);
    assert_eq!(
        std::fs::read_to_string(target.path().join("file.txt")).unwrap(),
        "complete"
    );
    assert!(
        names_in(tmp.path()).is_empty(),
        "{:?}",
        names_in(tmp.path())
    );
    // The new content was synced to disk before the rename made it visible.
    let synced = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        synced.lines().any(|l| l.contains("/.kmcp-write.")),
        "sync log: {synced:?}"
    );
}

pub(crate) fn which(program: &str) -> String {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap()
        .display()
        .to_string()
}

// ---- hardening 7. result uploads are retried within the deadline --------------------------------

/// The key header and body a relay stand-in received.
type Delivered = (String, Vec<u8>);

/// A relay stand-in that answers 429, then 502, 503 and 504 (what a load balancer in front of
/// replicas answers while one is killed or restarting), then accepts.
#[tokio::test]
async fn a_rate_limited_result_upload_is_retried_until_it_arrives() {
    use axum::routing::post;
    let attempts = Arc::new(AtomicUsize::new(0));
    let received: Arc<Mutex<Option<Delivered>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/relay/flaky", listener.local_addr().unwrap());
    let app = {
        let attempts = attempts.clone();
        let received = received.clone();
        axum::Router::new().route(
            "/relay/flaky",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let attempts = attempts.clone();
                let received = received.clone();
                async move {
                    match attempts.fetch_add(1, Ordering::SeqCst) {
                        0 => axum::http::StatusCode::TOO_MANY_REQUESTS,
                        1 => axum::http::StatusCode::BAD_GATEWAY,
                        2 => axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        3 => axum::http::StatusCode::GATEWAY_TIMEOUT,
                        _ => {
                            let key = headers
                                .get(KEY_HEADER)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            *received.lock().unwrap() = Some((key, body.to_vec()));
                            axum::http::StatusCode::NO_CONTENT
                        }
                    }
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tmp = tempfile::tempdir().unwrap();
    for uploader in ["curl", "python3"] {
        attempts.store(0, Ordering::SeqCst);
        let input = WrapperInput {
            job: exec_job("echo retried", 10, 1001),
            tickets: Some(Tickets {
                upload: endpoint(&url, "the-key"),
                download: None,
                stream: None,
            }),
            budget_s: 30,
            stale_after_s: 700,
        };
        let mut programs = vec![
            "sh", "mktemp", "rm", "mkfifo", "head", "cat", "date", "sleep", "wc", "tr", "env",
            "mv", "timeout", "kill",
        ];
        programs.push(uploader);
        let restricted = crate::tools::restricted_path(&programs);
        let mut child = spawn_wrapper(&input, &restricted.path().display().to_string(), tmp.path());
        let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success() || status.code().is_some());
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            5,
            "{uploader}: 429, 502, 503, 504, then accepted"
        );
        let (key, body) = received.lock().unwrap().take().expect("delivered");
        assert_eq!(key, "the-key");
        let report = ExecReport::parse(&parse_frame(Bytes::from(body)).unwrap()).unwrap();
        assert_eq!(&report.stdout[..], b"retried\n", "{uploader}");
    }
}

/// Images where `sh` is bash (in POSIX mode) run the same wrapper: tickets on fd 3, readers,
/// retries and the `--` all work there too.
#[tokio::test]
async fn the_wrapper_also_runs_where_sh_is_bash() {
    let relay = host_relay().await;
    let mut ticket = relay
        .expect_upload(binding(Purpose::ExecResult), 4096, Duration::from_secs(60))
        .await
        .unwrap();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(which("bash"), bin.path().join("sh")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut job = exec_job(
        "-x 2>/dev/null; echo \"$GREETING\"; env | grep -c '^KMCP_'; exit 4",
        10,
        1001,
    );
    if let Job::Exec(c) = &mut job {
        c.env.insert("GREETING".into(), "hi from bash".into());
    }
    let input = WrapperInput {
        job,
        tickets: Some(Tickets {
            upload: endpoint(ticket.url(), ticket.key()),
            download: None,
            stream: None,
        }),
        budget_s: 30,
        stale_after_s: 700,
    };
    let path = format!("{}:{}", bin.path().display(), host_path());
    let mut child = spawn_wrapper(&input, &path, tmp.path());
    let body = tokio::time::timeout(Duration::from_secs(30), ticket.received())
        .await
        .expect("a result arrived")
        .unwrap();
    let report = ExecReport::parse(&parse_frame(body).unwrap()).unwrap();
    assert_eq!(report.exit_code, 4);
    assert_eq!(&report.stdout[..], b"hi from bash\n0\n");
    assert!(!report.incomplete);
    let _ = child.wait().await;
    assert!(
        names_in(tmp.path()).is_empty(),
        "{:?}",
        names_in(tmp.path())
    );
}
