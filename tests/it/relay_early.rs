//! The streaming wrapper's early start (issue 14): its uploader's FIFOs beside the work
//! directory (made before it) go with the wrapper also when it is stopped by a signal, and
//! with a GNU `timeout` (which makes the command's process group itself) the command runs
//! without `setsid`, START still names a group that a group kill stops, and a `timeout` that
//! makes no group is reported as a lone pid, never as a group that does not exist.

use std::path::Path;
use std::time::Duration;

use kasm_mcp::relay::frame::{StreamFrame, parse_frame};
use kasm_mcp::relay::{StreamTicket, UploadTicket};

use crate::relay_integrity::{
    group_alive, group_members, host_relay, names_in, spawn_wrapper, which,
};
use crate::relay_lean::{
    PROGRAMS, appears, early_fifos, is_fifo, logging_path, result_report, stream_job, until_go,
};

/// Every program the wrappers call by name but `setsid` (so the command runs under `timeout`).
fn without_setsid() -> Vec<&'static str> {
    PROGRAMS.into_iter().filter(|p| *p != "setsid").collect()
}

/// Every program the wrappers call by name but `timeout` (so the command runs under `setsid`
/// and the wrapper's own watchdog).
fn without_timeout() -> Vec<&'static str> {
    PROGRAMS.into_iter().filter(|p| *p != "timeout").collect()
}

/// The first stream record (within `within`): the START, as (group?, id).
async fn start_record(stream: &mut StreamTicket, within: Duration) -> (bool, u32) {
    let body = tokio::time::timeout(within, stream.next())
        .await
        .expect("a START record arrived")
        .expect("the stream is open");
    match StreamFrame::parse(&parse_frame(body).unwrap()).unwrap() {
        StreamFrame::Start {
            group,
            id: Some(id),
            ..
        } => (group, u32::try_from(id).unwrap()),
        other => panic!("the first stream record is not a START with an id: {other:?}"),
    }
}

/// The process group of `pid` from `/proc/<pid>/stat`.
fn pgrp_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Sends `kill -<signal> <target>` from `sh` (as `kill_command`'s exec does: `-PGID` for a
/// group, the pid for a lone process).
fn shell_kill(signal: &str, target: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{signal} {target}")])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {target}: {status:?}");
}

/// The job's result: the command was ended by SIGTERM (128 + 15), not by its timeout.
async fn ended_by_term(result: &mut UploadTicket) {
    let (report, text) = result_report(result).await;
    assert_eq!(report.exit_code, 143, "{text}");
    assert!(!report.timed_out, "{text}");
}

/// A wrapper stopped by SIGTERM while its command runs (its trap's cleanup) removes its work
/// directory and the early uploader's FIFOs beside it in its one `rm`: nothing `kmcp-new.*`
/// is left for the age rule.
#[tokio::test]
async fn a_wrapper_stopped_by_term_removes_its_fifos_with_its_work_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = host_relay().await;
    let job = "0000000000000000000000000000001a";
    let (input, _result, _stream) = stream_job(&relay, &until_go(tmp.path()), job).await;
    let mut child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp.path());
    let work = tmp.path().join(format!("kmcp-new.{job}"));
    // The command runs once the wrapper wrote its pid (its group id: under setsid).
    let pgid = command_pid(&work.join("pgid")).await;
    let fifos = early_fifos(tmp.path(), job);
    for fifo in &fifos {
        assert!(is_fifo(fifo), "{} is not a FIFO", fifo.display());
    }
    shell_kill("TERM", &child.id().unwrap().to_string());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the wrapper exits on TERM")
        .unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    let left: Vec<String> = names_in(tmp.path())
        .into_iter()
        .filter(|n| n.starts_with("kmcp-new."))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // The command (in its own group) still polls for `go`. The end of the test removes its
    // temp dir without ever making `go` (writing it just before that removal raced with the
    // poll: the command missed it and polled on for good, re-parented to init, one leaked
    // poller per test run): the command ends by itself then, within a poll or two.
    assert!(
        group_alive(pgid),
        "the command ended before its temp dir was removed"
    );
    tmp.close().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while group_alive(pgid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leaked = group_alive(pgid);
    if leaked {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
    }
    assert!(
        !leaked,
        "the command still polled 5 s after its temp dir was removed"
    );
}

/// The pid the wrapper wrote into `path` (its `pgid` file), once it is there.
async fn command_pid(path: &Path) -> u32 {
    appears(path).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(pid) = std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .parse()
        {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "no pid written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Without `setsid` (else the command runs under it and the wrapper's own watchdog), with a
/// GNU `timeout` (a regular file; here a logging shim that runs it), the command runs under
/// `timeout`: `timeout` puts itself in a group of its own, and START reports that
/// group only once `/proc` shows the pid leads it. A group kill (`kill -TERM -PGID`, as
/// `kill_command` sends) stops the whole command, a background child included.
#[tokio::test]
async fn without_setsid_start_names_a_group_that_a_group_kill_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("programs");
    let path = logging_path(&without_setsid(), &log);
    let relay = host_relay().await;
    let (input, mut result, mut stream) = stream_job(
        &relay,
        "sleep 30 & sleep 30; wait",
        "0000000000000000000000000000001b",
    )
    .await;
    let mut child = spawn_wrapper(&input, &path.path().display().to_string(), tmp.path());
    let (group, pgid) = start_record(&mut stream, Duration::from_secs(10)).await;
    assert!(group, "START names a lone pid");
    assert_eq!(pgrp_of(pgid), Some(pgid), "{pgid} leads no group");
    let started = std::fs::read_to_string(&log).unwrap();
    assert!(!started.lines().any(|l| l == "setsid"), "{started}");
    assert!(started.lines().any(|l| l == "timeout"), "{started}");
    // Both sleeps run in that group.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while group_members(pgid, &["sleep"]).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the sleeps never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shell_kill("TERM", &format!("-{pgid}"));
    ended_by_term(&mut result).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while group_alive(pgid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the group kill left processes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the wrapper exits after its upload")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// A `timeout` that is a regular file but makes no process group (here GNU's with
/// `--foreground`): START never claims a group the pid does not lead; after 5 s it reports
/// the lone pid, which a plain `kill` (what `kill_command` sends for one) stops.
#[tokio::test]
async fn a_timeout_that_makes_no_group_is_reported_as_a_lone_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let shim = bin.path().join("timeout");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nexec '{}' --foreground \"$@\"\n",
            which("timeout")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // No setsid: with it the command would run without `timeout`.
    let logs = tempfile::tempdir().unwrap();
    let rest = logging_path(&without_setsid(), &logs.path().join("programs"));
    let path = format!("{}:{}", bin.path().display(), rest.path().display());
    let relay = host_relay().await;
    let (input, mut result, mut stream) =
        stream_job(&relay, "sleep 30", "0000000000000000000000000000001c").await;
    let started = std::time::Instant::now();
    let mut child = spawn_wrapper(&input, &path, tmp.path());
    let (group, pid) = start_record(&mut stream, Duration::from_secs(15)).await;
    assert!(!group, "START names group {pid}, which it does not lead");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "START came before the 5 s wait for a group"
    );
    assert_ne!(pgrp_of(pid), Some(pid));
    shell_kill("TERM", &pid.to_string());
    ended_by_term(&mut result).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the wrapper exits after its upload")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        names_in(tmp.path()),
        vec!["kmcp-job.0000000000000000000000000000001c".to_string()]
    );
}

/// The early uploader (forked by stage 1, before stage 2 unsets the wrapper's inputs) carries
/// none of them in its environment: no `KMCP_*` variable (the command text, the job id, the
/// caller's environment values for the command, …), and no ticket.
#[tokio::test]
async fn the_early_uploader_carries_none_of_the_wrappers_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = host_relay().await;
    let job = "0000000000000000000000000000001d";
    let (mut input, mut result, _stream) = stream_job(&relay, &until_go(tmp.path()), job).await;
    if let kasm_mcp::relay::wrapper::Job::Stream(stream) = &mut input.job {
        stream
            .command
            .env
            .insert("SECRET_FOR_THE_COMMAND".into(), "s3cr3t".into());
    }
    let sent = input.environment();
    assert!(sent.keys().any(|k| k.starts_with("KMCP_E_")), "{sent:?}");
    let mut child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp.path());
    let wrapper = child.id().unwrap();
    appears(&tmp.path().join(format!("kmcp-new.{job}")).join("pgid")).await;
    // The early curl: the one curl in the wrapper's process group.
    let curl = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let pgrp = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok());
            pgrp == Some(wrapper) && stat.contains("(curl)")
        })
        .expect("the early curl runs in the wrapper's process group");
    let environ = std::fs::read(format!("/proc/{curl}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter_map(|v| {
            std::str::from_utf8(v)
                .ok()?
                .split_once('=')
                .map(|(n, _)| n.to_string())
        })
        .collect();
    assert!(names.iter().any(|n| n == "PATH"), "{names:?}");
    let inputs: Vec<&String> = names.iter().filter(|n| n.starts_with("KMCP_")).collect();
    assert!(
        inputs.is_empty(),
        "the early curl's environment holds {inputs:?}"
    );
    std::fs::write(tmp.path().join("go"), "").unwrap();
    let (report, text) = result_report(&mut result).await;
    assert_eq!(report.exit_code, 0, "{text}");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}

/// A name planted where the early uploader's FIFOs go makes `mkfifo` fail for it: the wrapper
/// never opens it, still reports its result (a curl of its own), leaves the planted name and
/// what it points to as they were, and removes the other FIFO, which `mkfifo` did make
/// (nothing is left for the age rule; it removes only FIFOs of its own user, never a link).
#[tokio::test]
async fn a_planted_name_is_never_opened_and_the_half_made_pair_is_removed() {
    let relay = host_relay().await;
    for (job, planted) in [
        ("0000000000000000000000000000001f", "codes"),
        ("00000000000000000000000000000020", "cfg"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "victim\n").unwrap();
        let [cfg, codes] = early_fifos(tmp.path(), job);
        let (name, other) = if planted == "cfg" {
            (cfg, codes)
        } else {
            (codes, cfg)
        };
        std::os::unix::fs::symlink(&victim, &name).unwrap();
        let (input, mut result, _stream) = stream_job(&relay, "echo hi", job).await;
        let mut child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp.path());
        let (report, text) = result_report(&mut result).await;
        assert_eq!(report.exit_code, 0, "{planted}: {text}");
        assert_eq!(&report.stdout[..], b"hi\n", "{planted}: {text}");
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the wrapper exits after its upload")
            .unwrap();
        assert!(status.success(), "{planted}: {status:?}");
        assert!(
            std::fs::symlink_metadata(&name).is_ok_and(|m| m.file_type().is_symlink()),
            "{planted}: the planted link was removed"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim\n");
        assert!(
            std::fs::symlink_metadata(&other).is_err(),
            "{planted}: the FIFO mkfifo made was left behind"
        );
    }
}

/// The parent process of `pid` from `/proc/<pid>/stat`.
fn ppid_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The wrapper is the command's parent (no waiter process in between: it wakes the moment
/// the command ends) and reports the command's own exit status also when SIGUSR1 (what its
/// nap timer sends) reaches it from elsewhere while it waits, and when the command itself
/// dies of SIGUSR1 (138: the status an interrupted `wait` returns).
#[tokio::test]
async fn the_wrapper_waits_for_its_command_itself_and_keeps_its_status() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = host_relay().await;
    let job = "00000000000000000000000000000021";
    let command = format!(
        "while [ ! -e '{}' ] && [ -d '{}' ]; do sleep 0.05; done; exit 7",
        tmp.path().join("go").display(),
        tmp.path().display()
    );
    let (input, mut result, _stream) = stream_job(&relay, &command, job).await;
    let mut child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp.path());
    let wrapper = child.id().unwrap();
    let pgid = tmp.path().join(format!("kmcp-new.{job}")).join("pgid");
    appears(&pgid).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let command_pid: u32 = loop {
        if let Ok(pid) = std::fs::read_to_string(&pgid).unwrap().trim().parse() {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no pid written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(
        ppid_of(command_pid),
        Some(wrapper),
        "the command is not the wrapper's own child"
    );
    for _ in 0..5 {
        shell_kill("USR1", &wrapper.to_string());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    std::fs::write(tmp.path().join("go"), "").unwrap();
    let (report, text) = result_report(&mut result).await;
    assert_eq!(report.exit_code, 7, "{text}");
    assert!(!report.timed_out, "{text}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the wrapper exits after its upload")
        .unwrap();
    assert!(status.success(), "{status:?}");

    let (input, mut result, _stream) = stream_job(
        &relay,
        "sleep 0.2; kill -USR1 $$",
        "00000000000000000000000000000022",
    )
    .await;
    let mut child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp.path());
    let (report, text) = result_report(&mut result).await;
    assert_eq!(report.exit_code, 138, "{text}");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}

/// With `setsid` and no regular-file `timeout` (here: none on PATH) the command runs under the
/// wrapper's own watchdog: at the
/// timeout it sends TERM to the command's group (a background child included), and KILL two
/// seconds later to a group that ignores TERM; either way the result says timed out with
/// exit code 124 (as GNU `timeout`'s), and nothing of the group is left.
#[tokio::test]
async fn the_wrappers_own_watchdog_times_the_command_out_like_timeout() {
    let relay = host_relay().await;
    for (job, command, least, most) in [
        (
            "00000000000000000000000000000023",
            "sleep 30 & sleep 30; wait",
            1.0,
            2.5,
        ),
        (
            "00000000000000000000000000000024",
            "trap '' TERM; sleep 30 & sleep 30; wait",
            3.0,
            4.8,
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let log = logs.path().join("programs");
        let path = logging_path(&without_timeout(), &log);
        let (mut input, mut result, mut stream) = stream_job(&relay, command, job).await;
        if let kasm_mcp::relay::wrapper::Job::Stream(stream) = &mut input.job {
            stream.command.timeout_s = 1;
        }
        let started = std::time::Instant::now();
        let mut child = spawn_wrapper(&input, &path.path().display().to_string(), tmp.path());
        let (group, pgid) = start_record(&mut stream, Duration::from_secs(10)).await;
        assert!(group, "{command}: START names a lone pid");
        let (report, text) = result_report(&mut result).await;
        let took = started.elapsed().as_secs_f64();
        assert_eq!(report.exit_code, 124, "{command}: {text}");
        assert!(report.timed_out, "{command}: {text}");
        assert!(
            (least..most).contains(&took),
            "{command}: the result came after {took:.2} s"
        );
        assert!(
            !group_alive(pgid),
            "{command}: the group outlived the result"
        );
        let programs = std::fs::read_to_string(&log).unwrap();
        assert!(programs.lines().any(|l| l == "setsid"), "{programs}");
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
}
