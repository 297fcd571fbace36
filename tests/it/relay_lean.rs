//! The streaming wrapper's lean path (issue 14: the relay round trip of `true`), run on this
//! host against the real relay routes: which programs it starts for `true` (every program it
//! may call is a logging shim on its PATH), and the same START / CHUNK / EXEC records from
//! dash, bash and a busybox userland (ash with busybox applets, as in Alpine-based images).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kasm_mcp::relay::frame::{ExecReport, StreamFrame, parse_frame};
use kasm_mcp::relay::wrapper::{CommandJob, Job, StreamJob, Tickets, WrapperInput};
use kasm_mcp::relay::{Purpose, Relay, StreamTicket, UploadTicket};

use crate::relay_integrity::{
    binding, endpoint, group_members, host_relay, names_in, spawn_wrapper, which,
};

/// Every program the wrapper scripts call by name (besides `sh`).
pub(crate) const PROGRAMS: [&str; 22] = [
    "mkdir", "flock", "mv", "setsid", "timeout", "sleep", "curl", "rm", "env", "date", "wc", "cat",
    "head", "tail", "mktemp", "cut", "ls", "grep", "find", "mkfifo", "tr", "realpath",
];

/// What one streamed run sent: the stream records in order, and the result.
struct Run {
    stream: Vec<StreamFrame>,
    report: ExecReport,
}

/// The streaming wrapper's input for `command` as job `job_id`, with the tickets it uploads
/// its result and its stream records to on `relay`.
pub(crate) async fn stream_job(
    relay: &Arc<Relay>,
    command: &str,
    job_id: &str,
) -> (WrapperInput, UploadTicket, StreamTicket) {
    let result = relay
        .expect_upload(binding(Purpose::ExecResult), 4096, Duration::from_secs(60))
        .await
        .unwrap();
    let stream = relay
        .open_stream(
            binding(Purpose::ExecStream),
            4096,
            16,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let input = WrapperInput {
        job: Job::Stream(StreamJob {
            command: CommandJob {
                command: command.into(),
                cwd: None,
                timeout_s: 20,
                cap: 1001,
                env: BTreeMap::new(),
                cancel_tag: None,
            },
            job_id: job_id.into(),
            chunk_bytes: 1024,
            interval_ms: 200,
        }),
        tickets: Some(Tickets {
            upload: endpoint(result.url(), result.key()),
            download: None,
            stream: Some(endpoint(stream.url(), stream.key())),
        }),
        budget_s: 30,
        stale_after_s: 700,
    };
    (input, result, stream)
}

/// The result uploaded to `result` (within 30 s), parsed, and its text for messages.
pub(crate) async fn result_report(result: &mut UploadTicket) -> (ExecReport, String) {
    let body = tokio::time::timeout(Duration::from_secs(30), result.received())
        .await
        .expect("a result arrived")
        .unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    let report = ExecReport::parse(&parse_frame(body).unwrap())
        .unwrap_or_else(|e| panic!("{e}: the result was {text:?}"));
    (report, text)
}

/// Run `command` through the streaming wrapper with `path` as PATH and `tmp` as TMPDIR.
async fn stream_run(command: &str, path: &str, tmp: &Path) -> Run {
    let relay = host_relay().await;
    let (input, mut result, mut stream) =
        stream_job(&relay, command, "0123456789abcdef0123456789abcdef").await;
    let mut child = spawn_wrapper(&input, path, tmp);
    let (report, _) = result_report(&mut result).await;
    // The wrapper sends its stream records before the result, one request after the other.
    let mut frames = Vec::new();
    while let Some(body) = stream.try_next() {
        frames.push(StreamFrame::parse(&parse_frame(body).unwrap()).unwrap());
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the wrapper exits after its upload")
        .unwrap();
    assert!(status.success(), "{status:?}");
    Run {
        stream: frames,
        report,
    }
}

/// A directory with `sh` and, for each of `programs`, a shim that logs its name to `log`
/// and runs the real program.
pub(crate) fn logging_path(programs: &[&str], log: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(which("sh"), dir.path().join("sh")).unwrap();
    for program in programs {
        let shim = dir.path().join(program);
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\necho {program} >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                which(program)
            ),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// The output a run's chunks carry for one stream, placed at their offsets.
fn chunked(run: &Run, want_stdout: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in &run.stream {
        if let StreamFrame::Chunk {
            stdout,
            offset,
            bytes,
            ..
        } = frame
            && *stdout == want_stdout
        {
            out.truncate(usize::try_from(*offset).unwrap());
            out.extend_from_slice(bytes);
        }
    }
    out
}

/// Checks a run of `printf 'a\n'; …; printf 'b\n' >&2; exit 3` end to end: one START with a
/// process group first, the chunks' bytes, the record, the spill files, no work files left.
fn check_run(run: &Run, tmp: &Path, shell: &str) {
    match run.stream.first() {
        Some(StreamFrame::Start {
            group: true,
            id: Some(pgid),
            spill_dir,
        }) => {
            assert!(*pgid > 1, "{shell}");
            assert_eq!(
                Path::new(spill_dir),
                tmp.join("kmcp-job.0123456789abcdef0123456789abcdef"),
                "{shell}"
            );
        }
        other => panic!("{shell}: the first stream record is not a START: {other:?}"),
    }
    let starts = run
        .stream
        .iter()
        .filter(|f| matches!(f, StreamFrame::Start { .. }))
        .count();
    assert_eq!(starts, 1, "{shell}");
    assert_eq!(run.report.exit_code, 3, "{shell}");
    assert!(!run.report.timed_out, "{shell}");
    assert!(!run.report.incomplete, "{shell}");
    assert_eq!(&run.report.stdout[..], b"a\n", "{shell}");
    assert_eq!(&run.report.stderr[..], b"b\n", "{shell}");
    assert_eq!(chunked(run, true), b"a\n", "{shell}");
    assert_eq!(chunked(run, false), b"b\n", "{shell}");
    let spill = tmp.join("kmcp-job.0123456789abcdef0123456789abcdef");
    assert_eq!(std::fs::read(spill.join("stdout")).unwrap(), b"a\n");
    assert_eq!(std::fs::read(spill.join("stderr")).unwrap(), b"b\n");
    assert_eq!(std::fs::read(spill.join("exit_code")).unwrap(), b"3\n");
    assert_eq!(
        std::fs::metadata(&spill).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // Only the spill directory stays: the work directory went with the wrapper.
    assert_eq!(
        names_in(tmp),
        vec!["kmcp-job.0123456789abcdef0123456789abcdef".to_string()],
        "{shell}"
    );
}

/// `true` starts only what the lean path needs: the uploader started first (`mkfifo` for its
/// configuration and status codes, `curl`), the work and spill directories (`mkdir`), the
/// command (`timeout`, a regular file here, which makes its process group and stays its
/// watchdog should the wrapper die), at most one nap timer (`sleep`), the upload
/// (that `curl`: START and EXEC together) and the cleanup (`rm`, also of the FIFOs). When
/// `true` took longer than the first nap on a loaded machine: a second `curl` for START
/// alone and the `flock` of the work directory. No `setsid`, `mv`, `date`, `wc`, `cat`,
/// `head`, `mktemp`, `find` (the cleaner skips the wrapper's own FIFOs), `ls`/`grep` or `env`.
#[tokio::test]
async fn true_starts_only_the_programs_of_the_lean_path() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("programs");
    let path = logging_path(&PROGRAMS, &log);
    let run = stream_run("true", &path.path().display().to_string(), tmp.path()).await;
    assert_eq!(run.report.exit_code, 0);
    assert!(matches!(
        run.stream.first(),
        Some(StreamFrame::Start {
            group: true,
            id: Some(_),
            ..
        })
    ));
    let started = std::fs::read_to_string(&log).unwrap();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in started.lines() {
        *counts.entry(name).or_default() += 1;
    }
    let once = ["mkdir", "mkfifo", "timeout", "rm"];
    for name in once {
        assert_eq!(counts.get(name), Some(&1), "{name}: {counts:?}");
    }
    let curls = counts.get("curl").copied().unwrap_or(0);
    assert!((1..=2).contains(&curls), "{counts:?}");
    // The lock only when the command outlived the first nap (START went alone).
    let flocks = counts.get("flock").copied().unwrap_or(0);
    assert_eq!(flocks, curls - 1, "{counts:?}");
    let extra: Vec<&&str> = counts
        .keys()
        .filter(|name| !once.contains(name) && !["curl", "sleep", "flock"].contains(name))
        .collect();
    assert!(extra.is_empty(), "started for `true`: {counts:?}");
}

/// The same records from dash, bash, and busybox ash with busybox applets for every tool
/// (its `timeout` is a link, so the wrapper probes it for `-k`), for a command that ends at
/// once and one that outlives the first nap (START alone, a chunk while it runs).
#[tokio::test]
async fn the_streaming_wrapper_reports_the_same_records_from_dash_bash_and_busybox() {
    let busybox = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
        .expect("busybox is installed (scripts/setup-test-deps.sh)");
    let bash_bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(which("bash"), bash_bin.path().join("sh")).unwrap();
    // Only the applets this busybox has (Debian's has no flock: the wrapper then cleans by
    // age), and the host's curl (busybox has none).
    let applets = std::process::Command::new(&busybox)
        .arg("--list")
        .output()
        .unwrap()
        .stdout;
    let applets = String::from_utf8(applets).unwrap();
    let busybox_bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(which("curl"), busybox_bin.path().join("curl")).unwrap();
    for applet in PROGRAMS.iter().chain(&["sh"]) {
        if *applet != "curl" && applets.lines().any(|a| a == *applet) {
            std::os::unix::fs::symlink(&busybox, busybox_bin.path().join(applet)).unwrap();
        }
    }
    let shells = [
        ("dash", std::env::var("PATH").unwrap()),
        (
            "bash",
            format!(
                "{}:{}",
                bash_bin.path().display(),
                std::env::var("PATH").unwrap()
            ),
        ),
        ("busybox", busybox_bin.path().display().to_string()),
    ];
    for (shell, path) in shells {
        for command in [
            "printf 'a\\n'; printf 'b\\n' >&2; exit 3",
            "printf 'a\\n'; sleep 0.5; printf 'b\\n' >&2; exit 3",
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let run = stream_run(command, &path, tmp.path()).await;
            check_run(&run, tmp.path(), &format!("{shell}: {command}"));
        }
    }
}

/// The uploader started before the command never outlives the wrapper: killed while its
/// command runs, the wrapper leaves a `curl` that was blocked reading its configuration,
/// which then reads EOF and exits at once (no hang, no upload).
#[tokio::test]
async fn the_early_uploader_exits_when_the_wrapper_dies() {
    let relay = host_relay().await;
    // The stream ticket stays open (held) while the wrapper runs.
    let (input, mut result, _stream) =
        stream_job(&relay, "sleep 20", "fedcba9876543210fedcba9876543210").await;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp.path());
    let pgid = child.id().unwrap();
    // START went out on its own (the command outlived the first nap); the early uploader
    // still waits for its configuration.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .all(|e| !e.path().join("pgid").exists())
        || group_members(pgid, &["curl"]).len() != 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no waiting uploader: {:?}",
            group_members(pgid, &["curl"])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        group_members(pgid, &["curl"]).len(),
        1,
        "the uploader waits"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !group_members(pgid, &["curl"]).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the uploader outlived the wrapper: {:?}",
            group_members(pgid, &["curl"])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing was uploaded as the result.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), result.received())
            .await
            .is_err(),
        "a result arrived from a killed wrapper"
    );
    // The command: its group id is in the work directory.
    for entry in std::fs::read_dir(tmp.path()).unwrap().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path().join("pgid"))
            && let Ok(group) = text.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(group),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(i32::try_from(pgid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Runs `command` as streamed job `job_id` through the wrapper with the host's PATH and
/// `tmp` as TMPDIR, and returns its result once it arrived (the wrapper has exited then).
async fn finished_run(relay: &Arc<Relay>, command: &str, job_id: &str, tmp: &Path) -> ExecReport {
    let (input, mut result, _stream) = stream_job(relay, command, job_id).await;
    let mut child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp);
    let body = tokio::time::timeout(Duration::from_secs(30), result.received())
        .await
        .expect("a result arrived")
        .unwrap();
    let report = ExecReport::parse(&parse_frame(body).unwrap()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the wrapper exits after its upload")
        .unwrap();
    report
}

/// A process that holds the lock (`flock`, as a wrapper does on fd 9) on `dir` while it
/// lives; killed (and the lock released) when dropped, so a failing test leaks nothing.
struct LockHolder(std::process::Child);

impl LockHolder {
    fn lock(dir: &Path) -> Self {
        // `exec`: the `sleep` is the spawned process itself, holding fd 9 (no child to orphan).
        // A blocking `flock`: the probe below may hold the lock for an instant.
        let holder = std::process::Command::new("sh")
            .args(["-c", r#"exec 9<"$1" && flock 9 && exec sleep 60"#, "sh"])
            .arg(dir)
            .spawn()
            .unwrap();
        let holder = Self(holder);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::process::Command::new(which("flock"))
            .args(["-n"])
            .arg(dir)
            .arg("true")
            .status()
            .unwrap()
            .success()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{} not locked",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        holder
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The stale cleaner's decisions (run by every wrapper; the streaming one while its command
/// runs), on directories made by hand in the state a wrapper leaves them in, the same for
/// `kmcp.*` and `kmcp-new.*` (where a streaming wrapper keeps its work directory): one
/// without `held` (a wrapper that has not locked it yet: a command within its first nap)
/// stays while it is young and goes when old; one with `held` goes once unlocked (its
/// wrapper is gone) and stays while locked.
#[tokio::test]
async fn the_cleaner_removes_only_unlocked_held_or_old_work_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let made = |name: &str, held: bool| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        if held {
            std::fs::write(dir.join("held"), "\n").unwrap();
        }
        dir
    };
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    let mut holders = Vec::new();
    for prefix in ["kmcp.", "kmcp-new."] {
        made(&format!("{prefix}young"), false);
        made(&format!("{prefix}dead"), true);
        let live = made(&format!("{prefix}live"), true);
        // A live wrapper's lock.
        holders.push(LockHolder::lock(&live));
        let old = made(&format!("{prefix}old"), false);
        std::fs::File::open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    let relay = host_relay().await;
    let report = finished_run(
        &relay,
        "true",
        "00000000000000000000000000000001",
        tmp.path(),
    )
    .await;
    assert_eq!(report.exit_code, 0);
    drop(holders);
    let mut left = names_in(tmp.path());
    left.retain(|n| !n.starts_with("kmcp-job."));
    assert_eq!(
        left,
        ["kmcp-new.live", "kmcp-new.young", "kmcp.live", "kmcp.young"],
        "{left:?}"
    );
}

/// The stale cleaner of a wrapper from before `held` (commit 67f0271), as an older server in
/// the same session container runs it on `$1`: any unlocked `kmcp.*` goes, `kmcp-new.*` only
/// when old.
const OLD_CLEANER: &str = r#"kmcp_stale_min=61
kmcp_locks=
command -v flock >/dev/null 2>&1 && kmcp_locks=1
kmcp_old() { [ -n "$(find "$1" -prune -mmin +"$kmcp_stale_min" 2>/dev/null)" ]; }
for f in "$1/kmcp".*; do
  [ -e "$f" ] || continue
  if [ -n "$kmcp_locks" ]; then
    flock -n "$f" rm -rf "$f" >/dev/null 2>&1
  elif kmcp_old "$f"; then
    rm -rf "$f"
  fi
done
for f in "$1/kmcp"-new.*; do
  [ -e "$f" ] || continue
  kmcp_old "$f" && rm -rf "$f"
done
"#;

/// The command of a job that runs until the test creates `go` in `tmp`, or until `tmp` is
/// gone: a test that ends (or fails) without the command having seen `go` removes its temp
/// dir, and the command must not poll on forever after it (a leaked poller forks a `sleep`
/// 20 times a second for good, on a machine whose relay timings other tests and the benches
/// measure: docs/bench-notes/relay-tail.md).
pub(crate) fn until_go(tmp: &Path) -> String {
    format!(
        "while [ ! -e '{}' ] && [ -d '{}' ]; do sleep 0.05; done; echo done",
        tmp.join("go").display(),
        tmp.display()
    )
}

/// Waits for the job's result and checks that it reports its own output and exit code (not
/// `workdir_removed`), and that the wrapper exits having removed its work directory `work`.
async fn reports_done(
    mut result: UploadTicket,
    mut child: tokio::process::Child,
    tmp: &Path,
    work: &Path,
) {
    std::fs::write(tmp.join("go"), "").unwrap();
    let (report, text) = result_report(&mut result).await;
    assert_eq!(report.exit_code, 0, "{text}");
    assert_eq!(&report.stdout[..], b"done\n");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the wrapper exits after its upload")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!work.exists(), "the job removes its own work directory");
}

/// A `true` run (job `job_id`) in the same temp dir beside a live job succeeds, and its
/// stale cleaner leaves the live job's work directory `work`.
async fn true_run_beside(relay: &Arc<Relay>, job_id: &str, tmp: &Path, work: &Path) {
    let report = finished_run(relay, "true", job_id, tmp).await;
    assert_eq!(report.exit_code, 0);
    assert!(
        work.is_dir(),
        "the cleaner of a run beside it removed the live job's directory"
    );
}

/// The early uploader's FIFOs of job `job` in `tmp`: its configuration and status codes.
pub(crate) fn early_fifos(tmp: &Path, job: &str) -> [std::path::PathBuf; 2] {
    ["cfg", "codes"].map(|end| tmp.join(format!("kmcp-new.{job}.{end}")))
}

/// Whether `path` is a FIFO (not following a symlink).
pub(crate) fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Waits until `path` exists.
pub(crate) async fn appears(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A live job's work directory that is young and not locked (as within the command's first
/// nap; here for the job's whole life: its PATH has no `flock`) and its early uploader's
/// FIFOs beside it (`kmcp-new.<job>.cfg` and `.codes`) survive both the cleaner of an older
/// server's wrapper in the same container and that of a current run: the job still reports
/// its own output and exit code, and its exit removes the FIFOs with the directory. The old
/// cleaner does remove an unlocked `kmcp.*` beside it (what it would have done to the job's
/// directory, or to a `kmcp.*` file, under that name).
#[tokio::test]
async fn a_live_jobs_unlocked_work_directory_survives_old_and_new_cleaners() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let without_flock: Vec<&str> = PROGRAMS.into_iter().filter(|p| *p != "flock").collect();
    let path = logging_path(&without_flock, &logs.path().join("programs"));
    let witness = tmp.path().join("kmcp.unlocked");
    std::fs::create_dir(&witness).unwrap();
    let relay = host_relay().await;
    let job = "0000000000000000000000000000000d";
    let (input, result, _stream) = stream_job(&relay, &until_go(tmp.path()), job).await;
    let child = spawn_wrapper(&input, &path.path().display().to_string(), tmp.path());
    let work = tmp.path().join(format!("kmcp-new.{job}"));
    appears(&work).await;
    // The early uploader's FIFOs beside it (made before it): files named kmcp-new.*.
    let fifos = early_fifos(tmp.path(), job);
    for fifo in &fifos {
        assert!(is_fifo(fifo), "{} is not a FIFO", fifo.display());
    }
    // (Its status is that of its last `kmcp_old`: not asserted; the witness shows it ran.)
    std::process::Command::new("sh")
        .args(["-c", OLD_CLEANER, "sh"])
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(!witness.exists(), "the old cleaner did not run");
    assert!(
        work.is_dir(),
        "the old cleaner removed the live job's directory"
    );
    assert!(!work.join("held").exists(), "locked without flock");
    true_run_beside(
        &relay,
        "0000000000000000000000000000000e",
        tmp.path(),
        &work,
    )
    .await;
    for fifo in &fifos {
        assert!(is_fifo(fifo), "a cleaner removed {}", fifo.display());
    }
    reports_done(result, child, tmp.path(), &work).await;
    for fifo in &fifos {
        assert!(!fifo.exists(), "{} outlived its wrapper", fifo.display());
    }
}

/// A live job's work directory, once its wrapper locked it (the command outlived the first
/// nap), survives the cleaner of a run started beside it: the job still reports its own
/// output and exit code.
#[tokio::test]
async fn a_live_jobs_locked_work_directory_survives_the_cleaner_of_another_run() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = host_relay().await;
    let job = "0000000000000000000000000000000a";
    let (input, result, _stream) = stream_job(&relay, &until_go(tmp.path()), job).await;
    let child = spawn_wrapper(&input, &std::env::var("PATH").unwrap(), tmp.path());
    let work = tmp.path().join(format!("kmcp-new.{job}"));
    appears(&work.join("held")).await;
    true_run_beside(
        &relay,
        "0000000000000000000000000000000c",
        tmp.path(),
        &work,
    )
    .await;
    reports_done(result, child, tmp.path(), &work).await;
}
