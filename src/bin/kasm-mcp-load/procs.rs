//! The processes under test: the release `kasm-mcp simulator` and `kasm-mcp serve`, started
//! as children (so their CPU time and memory are theirs alone), and what `/proc` says about
//! them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Linux reports CPU times in clock ticks of 1/100 s (USER_HZ) on every common platform.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at "state" (field 3);
    // utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

/// Voluntary context switches of all of a process's threads so far: each is a thread
/// going to sleep (parked worker, blocked read), so their count per call counts the
/// wake-ups a call costs. 0 when unreadable.
pub fn voluntary_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// One `KiB` field of `/proc/PID/status` (0 when unreadable).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resident memory (VmRSS) in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// A free loopback port (bound and released; fine for a benchmark on one machine).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `kasm-mcp` binary next to this one (both come from `cargo build --release --bins`).
pub fn kasm_mcp_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let bin = me.with_file_name("kasm-mcp");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: build both binaries with `cargo build --release --bins`",
            bin.display()
        ))
    }
}

/// The simulator's connection settings, from its start-up banner.
#[derive(Debug, Clone)]
pub struct SimInfo {
    pub url: String,
    pub key: String,
    pub secret: String,
    pub user_id: String,
}

/// How long a [`Proc`] stopped with SIGTERM first may take to exit before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// A child process that is killed when dropped (with `child`). The simulator is sent SIGTERM
/// first and given [`TERM_GRACE`] to exit: its shutdown kills its sessions' sandbox holders
/// (`bwrap … sleep infinity`, re-parented to init once the simulator is gone), which a
/// SIGKILL leaves running for good, one per run of this program (docs/bench-notes/relay-tail.md).
pub struct Proc {
    child: Child,
    pub pid: u32,
    term_first: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.term_first || !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + TERM_GRACE;
        while std::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Still there: `kill_on_drop` sends SIGKILL as `child` drops.
    }
}

impl Proc {
    pub fn cpu(&self) -> f64 {
        cpu_seconds(self.pid)
    }

    pub fn switches(&self) -> u64 {
        voluntary_switches(self.pid)
    }

    pub fn rss(&self) -> u64 {
        rss_kib(self.pid)
    }

    /// VmRSS split into (anonymous: heap, stacks, written data; file-backed: the mapped
    /// binary and libraries), KiB. The file-backed part depends on the page cache (how the
    /// kernel read the binary in), not on what the server allocated.
    pub fn rss_split(&self) -> (u64, u64) {
        (
            status_kib(self.pid, "RssAnon"),
            status_kib(self.pid, "RssFile"),
        )
    }
}

/// Start `kasm-mcp simulator` with no start delay, no X displays and room for `max_sessions`
/// per user.
pub async fn start_simulator(bin: &Path, max_sessions: u32) -> Result<(Proc, SimInfo), String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .args([
            "simulator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--start-delay-ms",
            "0",
            "--max-kasms-per-user",
            &max_sessions.to_string(),
            // No Xvfb per session: hundreds of displays would load the machine under test.
            "--no-display",
        ])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let pid = child.id().ok_or("the simulator exited at once")?;
    let stdout = child.stdout.take().ok_or("no simulator stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let value = |line: &str, name: &str| {
        line.strip_prefix(name)
            .and_then(|v| v.strip_prefix('='))
            .map(str::to_string)
    };
    let (mut url, mut key, mut secret, mut user_id) = (None, None, None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => return Err("the simulator exited before printing its banner".into()),
            Err(_) => return Err("the simulator did not print its banner within 20 s".into()),
        };
        url = url.or_else(|| value(&line, "KASM_API_URL"));
        key = key.or_else(|| value(&line, "KASM_API_KEY"));
        secret = secret.or_else(|| value(&line, "KASM_API_SECRET"));
        user_id = user_id.or_else(|| value(&line, "KASM_USER_ID"));
        if line.starts_with('#') {
            break;
        }
    }
    let info = match (url, key, secret, user_id) {
        (Some(url), Some(key), Some(secret), Some(user_id)) => SimInfo {
            url,
            key,
            secret,
            user_id,
        },
        _ => return Err("the simulator's banner lacks KASM_* settings".into()),
    };
    Ok((
        Proc {
            child,
            pid,
            term_first: true,
        },
        info,
    ))
}

/// Start `kasm-mcp serve` from environment variables (as a new user would) plus a config
/// file holding only the tokens and raised rate limits; wait until `/readyz` answers.
pub async fn start_server(
    bin: &Path,
    sim: &SimInfo,
    config_toml: &str,
    dir: &Path,
    port: u16,
    log_filter: &str,
    extra_env: &[(String, String)],
) -> Result<Proc, String> {
    let path = dir.join("load.toml");
    std::fs::write(&path, config_toml).map_err(|e| format!("{}: {e}", path.display()))?;
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&path)
        .env("KASM_API_URL", &sim.url)
        .env("KASM_API_KEY", &sim.key)
        .env("KASM_API_SECRET", &sim.secret)
        .env("KASM_USER_ID", &sim.user_id)
        .env("MCP_RELAY_URL", format!("http://127.0.0.1:{port}"))
        .env("RUST_LOG", log_filter)
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let pid = child.id().ok_or("the server exited at once")?;
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..200 {
        if http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(Proc {
                child,
                pid,
                term_first: false,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the server did not become ready within 10 s".into())
}

/// Start the FastMCP implementation of `get_session_status` (`bench/fastmcp_status.py`)
/// with `python` against the simulator; wait until its port accepts connections.
pub async fn start_python(
    python: &Path,
    script: &Path,
    sim: &SimInfo,
    port: u16,
) -> Result<Proc, String> {
    let child = Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .env("KASM_API_URL", &sim.url)
        .env("KASM_API_KEY", &sim.key)
        .env("KASM_API_SECRET", &sim.secret)
        .env("KASM_USER_ID", &sim.user_id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let pid = child.id().ok_or("the Python server exited at once")?;
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(Proc {
                child,
                pid,
                term_first: false,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the Python server did not listen within 15 s".into())
}

/// Start this program's floor proxy (`floor-proxy`, see `floor.rs`) in front of the
/// simulator; returns it and its base URL once it has printed the address it listens on.
pub async fn start_floor_proxy(
    sim: &SimInfo,
    extra_env: &[(String, String)],
) -> Result<(Proc, String), String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut child = Command::new(me)
        .args(["floor-proxy", "--backend", &sim.url])
        .env("KASM_API_KEY", &sim.key)
        .env("KASM_API_SECRET", &sim.secret)
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the floor proxy: {e}"))?;
    let pid = child.id().ok_or("the floor proxy exited at once")?;
    let stdout = child.stdout.take().ok_or("no floor proxy stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        Ok(_) => return Err("the floor proxy exited before saying where it listens".into()),
        Err(_) => return Err("the floor proxy did not listen within 10 s".into()),
    };
    let addr = line
        .strip_prefix("listening=")
        .ok_or_else(|| format!("unexpected first line from the floor proxy: {line:?}"))?;
    Ok((
        Proc {
            child,
            pid,
            term_first: false,
        },
        format!("http://{addr}"),
    ))
}

#[cfg(test)]
mod stop_tests {
    use super::*;

    /// The simulator's [`Proc`] is stopped with SIGTERM first, so its own shutdown (which
    /// kills its sandbox holders) runs; a SIGKILL alone would skip it. Here a shell whose TERM
    /// trap leaves a mark stands in for the simulator.
    #[tokio::test]
    async fn a_proc_stopped_with_term_first_runs_its_own_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("stopped");
        let script = format!(
            "trap 'echo stopped > {}; kill $! 2>/dev/null; exit 0' TERM; echo up; sleep 30 & wait",
            mark.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Not the test's own stderr: its `sleep` may outlive the shell by a moment.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        // The trap is set once it has said so.
        let mut up = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(up.next_line().await.unwrap().as_deref(), Some("up"));
        drop(Proc {
            child,
            pid,
            term_first: true,
        });
        assert!(
            mark.exists(),
            "the process was killed without running its TERM handler"
        );
    }
}
