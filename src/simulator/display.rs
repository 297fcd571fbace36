//! One X display per simulated session, so the desktop tools act on real pixels.
//!
//! When `Xvfb` is installed (and [`DisplayOptions::enabled`]), preparing a session starts
//! `Xvfb :<n> -displayfd 1` on a free display number of the host, in its own process group,
//! listening only on its filesystem socket `/tmp/.X11-unix/X<n>` (no TCP, no abstract
//! socket that other sessions could reach). The sandbox binds that socket at
//! `/tmp/.X11-unix/X1` inside the session's private `/tmp` and sets `DISPLAY=:1`, as Kasm
//! images have it. No window manager runs; the sandbox starts an `xterm` in it. Destroying the
//! session (or the simulator) terminates the server's process group.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncBufReadExt;

/// The display number sessions see (`DISPLAY=:1`, as in Kasm images).
pub const SESSION_DISPLAY: &str = ":1";
/// Where the session's display socket appears inside its sandbox.
pub const SESSION_SOCKET: &str = "/tmp/.X11-unix/X1";

/// Longest wait for an `Xvfb` to report its display number.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Host display numbers chosen from (high, so they stay clear of people's own displays).
const DISPLAY_NUMBERS: std::ops::Range<u32> = 1000..30_000;
/// Display numbers tried before giving up.
const ATTEMPTS: usize = 5;

/// Whether and how sessions get a display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayOptions {
    /// Start an `Xvfb` per session when it is installed.
    pub enabled: bool,
    /// Screen size in pixels.
    pub width: u32,
    pub height: u32,
}

impl Default for DisplayOptions {
    fn default() -> Self {
        DisplayOptions {
            enabled: true,
            width: 1280,
            height: 720,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Running {
    number: u32,
    pgid: i32,
}

/// The per-session X servers.
#[derive(Debug, Default)]
pub struct Displays {
    /// The `Xvfb` binary, when displays are enabled and it is installed.
    xvfb: Option<PathBuf>,
    size: (u32, u32),
    running: Mutex<HashMap<String, Running>>,
}

impl Displays {
    /// Find `Xvfb` on PATH (when enabled); without it sessions have no display.
    pub fn detect(options: DisplayOptions) -> Displays {
        let xvfb = options.enabled.then(find_xvfb).flatten();
        if options.enabled && xvfb.is_none() {
            tracing::info!("simulator: Xvfb not installed; sessions have no X display");
        }
        Displays {
            xvfb,
            size: (options.width, options.height),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Whether sessions get a display.
    pub fn available(&self) -> bool {
        self.xvfb.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start the session's X server; returns its host display number, or None when
    /// sessions have no display.
    ///
    /// The number is chosen here, at random from a high range, and passed explicitly:
    /// `Xvfb -displayfd` alone lets two servers that start at the same moment both pick the
    /// lowest free number (one then unlinks the other's socket). With an explicit number,
    /// Xvfb's lock file decides atomically; a taken number makes it exit, and another is tried.
    pub async fn start(&self, kasm_id: &str) -> std::io::Result<Option<u32>> {
        let Some(xvfb) = &self.xvfb else {
            return Ok(None);
        };
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let number = rand::Rng::gen_range(&mut rand::thread_rng(), DISPLAY_NUMBERS);
            match self.start_on(xvfb, number).await {
                Ok(pgid) => {
                    self.lock()
                        .insert(kasm_id.to_string(), Running { number, pgid });
                    tracing::debug!(%kasm_id, number, "simulator display started");
                    return Ok(Some(number));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("Xvfb did not start")))
    }

    /// Run `Xvfb :number` and wait until it reports it is ready; returns its process group.
    async fn start_on(&self, xvfb: &PathBuf, number: u32) -> std::io::Result<i32> {
        let (w, h) = self.size;
        let mut child = tokio::process::Command::new(xvfb)
            .arg(format!(":{number}"))
            .args(["-displayfd", "1", "-nolisten", "tcp", "-nolisten", "local"])
            .args(["-screen", "0", &format!("{w}x{h}x24")])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(false)
            .spawn()?;
        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| std::io::Error::other("Xvfb has no pid"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("Xvfb has no stdout"))?;
        let mut line = String::new();
        let read = tokio::time::timeout(
            START_TIMEOUT,
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        // Reaped in the background whatever happens (no zombies).
        tokio::spawn(async move {
            let status = child.wait().await;
            tracing::debug!(pgid, ?status, "simulator Xvfb exited");
        });
        match (read, line.trim().parse::<u32>()) {
            (Ok(Ok(_)), Ok(reported)) if reported == number => Ok(pgid),
            _ => {
                terminate(pgid);
                Err(std::io::Error::other(format!(
                    "Xvfb did not become ready on display :{number} within {} s (taken, or it failed)",
                    START_TIMEOUT.as_secs()
                )))
            }
        }
    }

    /// The host display number of the session's X server, while it runs.
    pub fn number(&self, kasm_id: &str) -> Option<u32> {
        self.lock().get(kasm_id).map(|r| r.number)
    }

    /// The host socket of the session's display, while it runs.
    pub fn socket(&self, kasm_id: &str) -> Option<PathBuf> {
        self.lock()
            .get(kasm_id)
            .map(|r| PathBuf::from(format!("/tmp/.X11-unix/X{}", r.number)))
    }

    /// Terminate the session's X server (it removes its socket and lock file on the way out).
    pub fn stop(&self, kasm_id: &str) {
        if let Some(running) = self.lock().remove(kasm_id) {
            terminate(running.pgid);
        }
    }

    /// Terminate every session's X server.
    pub fn stop_all(&self) {
        for (_, running) in self.lock().drain() {
            terminate(running.pgid);
        }
    }
}

fn terminate(pgid: i32) {
    if pgid > 1
        && !matches!(
            killpg(Pid::from_raw(pgid), Signal::SIGTERM),
            Err(Errno::ESRCH)
        )
    {
        tracing::debug!(pgid, "simulator: terminated an Xvfb");
    }
}

fn find_xvfb() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("Xvfb"))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_display_starts_listens_on_its_socket_and_stops() {
        let displays = Displays::detect(DisplayOptions {
            width: 320,
            height: 200,
            ..DisplayOptions::default()
        });
        if !displays.available() {
            eprintln!("Xvfb not installed: skipped");
            return;
        }
        let number = displays.start("k1").await.unwrap().unwrap();
        let socket = displays.socket("k1").unwrap();
        assert_eq!(socket, PathBuf::from(format!("/tmp/.X11-unix/X{number}")));
        assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
        displays.stop("k1");
        assert!(displays.socket("k1").is_none());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            assert!(std::time::Instant::now() < deadline, "Xvfb still answers");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn disabled_displays_start_nothing() {
        let displays = Displays::detect(DisplayOptions {
            enabled: false,
            ..DisplayOptions::default()
        });
        assert!(!displays.available());
    }
}
