//! Really running `exec_command_kasm` commands, one private sandbox per session.
//!
//! Layout: `<sandbox_root>/<kasm_id>/home` is the session's `/home/kasm-user`,
//! `<sandbox_root>/<kasm_id>/tmp` its `/tmp`. With `bwrap`: no capabilities (`--cap-drop ALL`,
//! also for `root` and when the simulator runs as root), host files read-only, `/home`
//! replaced by the session's home only, a private `/tmp`, a private pid namespace, the
//! network shared (commands reach 127.0.0.1). Without `bwrap`: the command runs in the
//! session's home directory with `HOME` pointing at it (no filesystem isolation).
//!
//! Every exec gets its own process group; the groups are remembered per session and
//! signalled as a whole (pause = SIGSTOP, resume = SIGCONT, stop/destroy/shutdown = SIGKILL).
//! No `--die-with-parent`/`PR_SET_PDEATHSIG`: those fire when the spawning *thread* exits.
//!
//! With bwrap, all execs of a session share ONE pid namespace and ONE mount namespace, as
//! `docker exec`s of one container do: a per-session *holder* (`bwrap --unshare-pid … sleep`,
//! with an empty environment) builds the session's filesystem view (host files read-only,
//! the session's home and `/tmp`, its display socket, a `/proc` of its own pid namespace)
//! and owns both namespaces. Each exec enters them with `nsenter --pid --mount` (which
//! `setns()`es, as `docker exec` does: no per-exec mounts) and drops every capability with
//! `setpriv` (which also switches to the exec's `user`).
//! So a process one exec started in the background (`setsid`, `nohup … &`) outlives
//! that exec, and a later exec sees it and can signal it (`kill -- -PGID`), as in Kasm.
//! Stopping the holder's namespace init kills every process of the session; pause and resume
//! signal every process in the namespace (like `docker pause`'s freezer, which also reaches
//! processes that left the exec's process group).
//!
//! With bwrap and [`Displays`] available, each session also gets its own X server, bound at
//! `/tmp/.X11-unix/X1` with `DISPLAY=:1` for its commands and an `xterm` running in it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::config::SandboxMode;
use super::display::{Displays, SESSION_DISPLAY, SESSION_SOCKET};

/// The in-container home directory of Kasm images.
pub const KASM_HOME: &str = "/home/kasm-user";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How commands are isolated, once resolved at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    Bwrap(PathBuf),
    Directory,
    /// `SandboxMode::Bwrap` was asked for but bwrap does not work here: every exec fails.
    Unavailable,
}

/// One command to run, as `exec_config` describes it.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    /// Container environment first, then the exec's own `environment`.
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

/// Why a command was not started (the API answers `Kasm exec failed`).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("bwrap was required but is not usable on this host")]
    SandboxUnavailable,
    #[error("the session already runs {0} processes")]
    TooManyProcesses(usize),
    #[error("working directory {0:?} does not exist in the session")]
    NoWorkdir(String),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("invalid environment variable {0:?}")]
    BadEnvironment(String),
    #[error("empty command")]
    EmptyCommand,
    #[error("could not start the command: {0}")]
    Spawn(#[from] io::Error),
}

#[derive(Debug, Default)]
struct SessionProcesses {
    /// Process groups that may still have members.
    groups: HashSet<i32>,
    /// Group leaders not yet reaped.
    running: usize,
    /// The session's shared pid namespace (bwrap only).
    holder: Option<Holder>,
}

/// The process that owns a session's pid namespace: `bwrap` (host pid = its process group)
/// and the namespace's init (a host pid inside the namespace, the target of `nsenter`).
#[derive(Debug, Clone, Copy)]
struct Holder {
    pgid: i32,
    init: i32,
}

impl Holder {
    fn alive(&self) -> bool {
        std::path::Path::new(&format!("/proc/{}/ns/pid", self.init)).exists()
    }

    /// The namespace's inode link text (`pid:[…]`), to find its members.
    fn namespace(&self) -> Option<std::ffi::OsString> {
        std::fs::read_link(format!("/proc/{}/ns/pid", self.init))
            .ok()
            .map(PathBuf::into_os_string)
    }

    /// Whether bwrap has finished the session's filesystem view: the init's child (the
    /// namespace's pid 2) has become `sleep`.
    fn view_ready(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.init))
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
            .and_then(|child| std::fs::read_to_string(format!("/proc/{child}/comm")).ok())
            .is_some_and(|comm| comm.trim_end() == "sleep")
    }

    /// Signal every process of the namespace (those that left the exec's group too).
    fn signal_all(&self, signal: Signal) {
        let Some(ns) = self.namespace() else { return };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if pid > 1
                && std::fs::read_link(entry.path().join("ns/pid"))
                    .is_ok_and(|link| link.into_os_string() == ns)
            {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
            }
        }
    }

    fn kill(&self) {
        signal_group(self.pgid, Signal::SIGKILL);
        let _ = nix::sys::signal::kill(Pid::from_raw(self.init), Signal::SIGKILL);
    }
}

/// The per-session process and directory registry.
#[derive(Debug)]
pub struct Sandbox {
    root: PathBuf,
    remove_root_on_shutdown: bool,
    isolation: Isolation,
    max_processes: usize,
    sessions: Mutex<HashMap<String, SessionProcesses>>,
    displays: Displays,
    /// `nsenter` by absolute path: spawning a bare name under a cleared environment makes
    /// the standard library fork the whole simulator instead of `posix_spawn`ing (measured:
    /// +0.5 ms of simulator CPU per exec).
    nsenter: PathBuf,
}

impl Sandbox {
    /// Create the root directory and decide how to isolate commands.
    pub async fn new(root: &Path, mode: SandboxMode, max_processes: usize) -> io::Result<Self> {
        let existed = root.exists();
        tokio::fs::create_dir_all(root).await?;
        let root = tokio::fs::canonicalize(root).await?;
        let isolation = match mode {
            SandboxMode::Directory => Isolation::Directory,
            SandboxMode::Bwrap => match usable_bwrap().await {
                Some(path) => Isolation::Bwrap(path),
                None => {
                    tracing::error!(
                        "simulator sandbox: bwrap was required but does not work here; exec_command_kasm will fail"
                    );
                    Isolation::Unavailable
                }
            },
            SandboxMode::Auto => match usable_bwrap().await {
                Some(path) => Isolation::Bwrap(path),
                None => {
                    tracing::warn!(
                        "simulator sandbox: bwrap not available; commands run in a per-session directory WITHOUT filesystem isolation (install bubblewrap)"
                    );
                    Isolation::Directory
                }
            },
        };
        Ok(Sandbox {
            root,
            remove_root_on_shutdown: !existed,
            isolation,
            max_processes: max_processes.max(1),
            sessions: Mutex::new(HashMap::new()),
            displays: Displays::default(),
            nsenter: on_path("nsenter").unwrap_or_else(|| PathBuf::from("/usr/bin/nsenter")),
        })
    }

    /// Give sessions X displays (only with bwrap: the display socket is bound into the
    /// session's private `/tmp`).
    pub fn with_displays(mut self, displays: Displays) -> Self {
        self.displays = displays;
        self
    }

    /// The host display number of the session's X server, while it runs.
    pub fn display_number(&self, kasm_id: &str) -> Option<u32> {
        self.displays.number(kasm_id)
    }

    /// Whether new sessions get an X display.
    pub fn has_displays(&self) -> bool {
        self.displays.available() && matches!(self.isolation, Isolation::Bwrap(_))
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn session_base(&self, kasm_id: &str) -> PathBuf {
        self.root.join(kasm_id)
    }

    /// Host directory mounted at `/home/kasm-user` for a session.
    pub fn home_dir(&self, kasm_id: &str) -> PathBuf {
        self.session_base(kasm_id).join("home")
    }

    fn tmp_dir(&self, kasm_id: &str) -> PathBuf {
        self.session_base(kasm_id).join("tmp")
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, SessionProcesses>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Create a session's directories (at `request_kasm`), and its display with an `xterm`
    /// when sessions have displays.
    pub async fn prepare(self: &Arc<Self>, kasm_id: &str) -> io::Result<()> {
        let home = self.home_dir(kasm_id);
        tokio::fs::create_dir_all(&home).await?;
        // Writable for every user: commands run without capabilities (a capability-less root
        // cannot write into a directory it does not own) and the display's xterm runs as
        // kasm-user; in Kasm images the home belongs to kasm-user, the default exec user.
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).await?;
        }
        // As in a container: /tmp and /tmp/.X11-unix are world-writable and sticky, so
        // non-root users (an `xterm` as kasm-user) can use them.
        let x11 = self.tmp_dir(kasm_id).join(".X11-unix");
        tokio::fs::create_dir_all(&x11).await?;
        for dir in [self.tmp_dir(kasm_id), x11] {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).await?;
        }
        // The display first: the holder binds its socket into the session's view.
        let display = self.has_displays() && self.displays.start(kasm_id).await?.is_some();
        if let Isolation::Bwrap(bwrap) = &self.isolation {
            let (sandbox, kasm_id, bwrap) = (Arc::clone(self), kasm_id.to_string(), bwrap.clone());
            tokio::task::spawn_blocking(move || sandbox.holder(&bwrap, &kasm_id))
                .await
                .map_err(io::Error::other)?
                .map_err(io::Error::other)?;
        }
        if display {
            // As kasm-user (uid 1000), as in Kasm images: without capabilities, a root xterm
            // cannot chown its pty and exits.
            let xterm = ExecSpec {
                argv: ["xterm", "-geometry", "100x30+40+40"]
                    .map(String::from)
                    .to_vec(),
                user: Some("kasm-user".into()),
                ..ExecSpec::default()
            };
            if let Err(e) = self.exec(kasm_id, xterm) {
                tracing::warn!(%kasm_id, error = %e, "simulator: could not start xterm on the session's display");
            }
        }
        Ok(())
    }

    /// Process groups currently remembered for a session (for tests and diagnostics).
    pub fn process_groups(&self, kasm_id: &str) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .lock()
            .get(kasm_id)
            .map(|p| p.groups.iter().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Start a command detached; returns its process-group id.
    pub fn exec(self: &Arc<Self>, kasm_id: &str, spec: ExecSpec) -> Result<i32, ExecError> {
        if spec.argv.is_empty() {
            return Err(ExecError::EmptyCommand);
        }
        for (k, v) in &spec.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(ExecError::BadEnvironment(k.clone()));
            }
        }
        let mut command = match &self.isolation {
            Isolation::Bwrap(bwrap) => {
                let holder = self.holder(bwrap, kasm_id)?;
                self.session_command(holder, kasm_id, &spec)?
            }
            Isolation::Directory => self.directory_command(kasm_id, &spec)?,
            Isolation::Unavailable => return Err(ExecError::SandboxUnavailable),
        };
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(false);

        let mut sessions = self.lock();
        let procs = sessions.entry(kasm_id.to_string()).or_default();
        if procs.running >= self.max_processes {
            return Err(ExecError::TooManyProcesses(procs.running));
        }
        let mut child = command.spawn()?;
        let Some(pgid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
            return Err(ExecError::Spawn(io::Error::other(
                "spawned process has no pid",
            )));
        };
        procs.groups.insert(pgid);
        procs.running += 1;
        drop(sessions);

        let registry = Arc::clone(self);
        let kasm_id = kasm_id.to_string();
        tokio::spawn(async move {
            let status = child.wait().await;
            tracing::debug!(%kasm_id, pgid, ?status, "simulator exec finished");
            registry.reaped(&kasm_id, pgid);
        });
        Ok(pgid)
    }

    /// The session's namespace holder, started when missing (or dead): its pid namespace and
    /// its mount namespace with the session's filesystem view, which every exec enters.
    fn holder(&self, bwrap: &Path, kasm_id: &str) -> Result<Holder, ExecError> {
        let mut sessions = self.lock();
        let procs = sessions.entry(kasm_id.to_string()).or_default();
        if let Some(holder) = procs.holder.filter(Holder::alive) {
            return Ok(holder);
        }
        let mut command = std::process::Command::new(bwrap);
        command.arg("--unshare-pid");
        self.session_view(&mut command, kasm_id);
        command
            .args(["--", "sleep", "infinity"])
            .env_clear()
            .env("PATH", DEFAULT_PATH)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn()?;
        let pgid = i32::try_from(child.id())
            .map_err(|_| ExecError::Spawn(io::Error::other("holder pid out of range")))?;
        // Reap it whenever it ends (destroy kills it).
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        // bwrap forks the namespace's init at once; wait for it (milliseconds).
        let children = format!("/proc/{pgid}/task/{pgid}/children");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let init = loop {
            let first = std::fs::read_to_string(&children)
                .ok()
                .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()));
            if let Some(init) = first {
                let holder = Holder { pgid, init };
                // The init has entered the new namespace once its link differs from ours; the
                // session's view is complete once its child runs `sleep` (bwrap builds the
                // view in the init, then forks the command): an exec must not enter the
                // mount namespace half built.
                if holder.namespace()
                    != std::fs::read_link("/proc/self/ns/pid")
                        .ok()
                        .map(PathBuf::into_os_string)
                    && holder.view_ready()
                {
                    break init;
                }
            }
            if std::time::Instant::now() > deadline {
                signal_group(pgid, Signal::SIGKILL);
                return Err(ExecError::Spawn(io::Error::other(
                    "the session's pid-namespace holder did not start",
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let holder = Holder { pgid, init };
        procs.holder = Some(holder);
        Ok(holder)
    }

    /// A group leader exited: forget the group unless members outlive it.
    fn reaped(&self, kasm_id: &str, pgid: i32) {
        let mut sessions = self.lock();
        if let Some(procs) = sessions.get_mut(kasm_id) {
            procs.running = procs.running.saturating_sub(1);
            if !group_alive(pgid) {
                procs.groups.remove(&pgid);
            }
        }
    }

    /// Signal every process of a session (pause/resume/stop).
    pub fn signal(&self, kasm_id: &str, signal: Signal) {
        let mut sessions = self.lock();
        if let Some(procs) = sessions.get_mut(kasm_id) {
            procs.groups.retain(|&pgid| signal_group(pgid, signal));
            if let Some(holder) = procs.holder {
                if signal == Signal::SIGKILL {
                    holder.kill();
                    procs.holder = None;
                } else {
                    holder.signal_all(signal);
                }
            }
        }
    }

    /// Kill a session's processes and remove its directories.
    pub async fn destroy(&self, kasm_id: &str) {
        self.displays.stop(kasm_id);
        let procs = self.lock().remove(kasm_id);
        for pgid in procs.iter().flat_map(|p| p.groups.iter().copied()) {
            signal_group(pgid, Signal::SIGKILL);
        }
        if let Some(holder) = procs.and_then(|p| p.holder) {
            holder.kill();
        }
        let base = self.session_base(kasm_id);
        let removed = tokio::task::spawn_blocking(move || remove_tree(&base)).await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(%kasm_id, error = %e, "simulator: could not remove session directory");
        }
    }

    /// Kill everything and remove all session directories (synchronous: also used by `Drop`).
    pub fn kill_all_and_clean(&self) {
        self.displays.stop_all();
        let all: Vec<(String, SessionProcesses)> = self.lock().drain().collect();
        for (kasm_id, procs) in all {
            for pgid in procs.groups {
                signal_group(pgid, Signal::SIGKILL);
            }
            if let Some(holder) = procs.holder {
                holder.kill();
            }
            let _ = remove_tree(&self.session_base(&kasm_id));
        }
        if self.remove_root_on_shutdown {
            let _ = remove_tree(&self.root);
        }
    }

    /// The session's filesystem view, as `bwrap` arguments: host files read-only, the sandbox
    /// root hidden, `/home` holding only the session's home, a private `/tmp` (with the
    /// display socket when the session has one), and `/proc` of the new pid namespace.
    fn session_view(&self, cmd: &mut std::process::Command, kasm_id: &str) {
        cmd.args(["--ro-bind", "/", "/"]);
        if !self.root.starts_with("/tmp") && !self.root.starts_with("/home") {
            cmd.arg("--tmpfs").arg(&self.root);
        }
        cmd.args(["--tmpfs", "/home"]);
        cmd.arg("--bind").arg(self.home_dir(kasm_id)).arg(KASM_HOME);
        cmd.arg("--bind").arg(self.tmp_dir(kasm_id)).arg("/tmp");
        if let Some(socket) = self.displays.socket(kasm_id) {
            cmd.arg("--bind").arg(socket).arg(SESSION_SOCKET);
        }
        cmd.args(["--dev", "/dev", "--proc", "/proc"]);
    }

    fn session_command(
        &self,
        holder: Holder,
        kasm_id: &str,
        spec: &ExecSpec,
    ) -> Result<tokio::process::Command, ExecError> {
        let home = self.home_dir(kasm_id);
        let tmp = self.tmp_dir(kasm_id);
        let workdir = spec.workdir.clone().unwrap_or_else(|| KASM_HOME.into());
        let visible = container_path_on_host(&workdir, &home, &tmp, true);
        if !workdir.starts_with('/') || !visible.is_dir() {
            return Err(ExecError::NoWorkdir(workdir));
        }
        // Into the session's namespaces, as `docker exec` does: `nsenter` setns()es into the
        // holder's mount namespace (the session's filesystem view, its own /proc) and pid
        // namespace, forks the command into it, and `setpriv` drops every capability (and
        // switches user) before the command starts. The `nsenter` process that holds a copy
        // of the exec's environment stays outside the pid namespace, invisible to every
        // session command (`docker exec` leaves none behind either).
        let user = spec.user.as_deref().map(resolve_user).transpose()?;
        let mut cmd = tokio::process::Command::new(&self.nsenter);
        cmd.arg(format!("--target={}", holder.init))
            .args(["--pid", "--mount", "--root"])
            .arg(format!("--wdns={workdir}"))
            .args(["--", "setpriv"]);
        if let Some(uid_gid) = &user {
            cmd.arg(format!("--reuid={}", uid_gid.0))
                .arg(format!("--regid={}", uid_gid.1))
                .arg("--clear-groups");
        }
        // No capabilities inside, even when the simulator runs as root: otherwise a session
        // command keeps CAP_SYS_ADMIN and can remount the read-only host files writable.
        cmd.args(["--bounding-set=-all", "--inh-caps=-all", "--"]);
        cmd.args(&spec.argv);
        let mut env = container_env(KASM_HOME, &spec.env);
        if self.displays.socket(kasm_id).is_some() {
            env.entry("DISPLAY".into())
                .or_insert_with(|| SESSION_DISPLAY.into());
        }
        cmd.env_clear().envs(env);
        Ok(cmd)
    }

    fn directory_command(
        &self,
        kasm_id: &str,
        spec: &ExecSpec,
    ) -> Result<tokio::process::Command, ExecError> {
        let home = self.home_dir(kasm_id);
        let tmp = self.tmp_dir(kasm_id);
        let workdir = match &spec.workdir {
            Some(w) if !w.starts_with('/') => home.join(w),
            Some(w) => container_path_on_host(w, &home, &tmp, false),
            None => home.clone(),
        };
        if !workdir.is_dir() {
            return Err(ExecError::NoWorkdir(workdir.display().to_string()));
        }
        if let Some(user) = &spec.user {
            resolve_user(user)?;
            tracing::debug!(%user, "simulator directory sandbox: exec user ignored");
        }
        let (program, args) = spec.argv.split_first().ok_or(ExecError::EmptyCommand)?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).current_dir(&workdir);
        let home_str = home.to_string_lossy().into_owned();
        let mut env = container_env(&home_str, &spec.env);
        env.insert("TMPDIR".into(), tmp.to_string_lossy().into_owned());
        cmd.env_clear().envs(env);
        Ok(cmd)
    }
}

/// Where a path inside the container lives on the host.
fn container_path_on_host(path: &str, home: &Path, tmp: &Path, map_tmp: bool) -> PathBuf {
    let p = Path::new(path);
    if let Ok(rest) = p.strip_prefix(KASM_HOME) {
        return home.join(rest);
    }
    if map_tmp && let Ok(rest) = p.strip_prefix("/tmp") {
        return tmp.join(rest);
    }
    p.to_path_buf()
}

/// The environment a Kasm container gives an exec: a clean base, then the session's and the
/// exec's variables. Nothing of the simulator's own environment (secrets!) leaks in.
fn container_env(home: &str, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("PATH", DEFAULT_PATH),
        ("HOME", home),
        ("USER", "kasm-user"),
        ("LOGNAME", "kasm-user"),
        ("SHELL", "/bin/bash"),
        ("LANG", "C.UTF-8"),
        ("TERM", "xterm"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Docker-style `user`: `root`, `kasm-user`, `uid` or `uid:gid`.
fn resolve_user(user: &str) -> Result<(u32, u32), ExecError> {
    let unknown = || ExecError::UnknownUser(user.to_string());
    match user.trim() {
        "root" => Ok((0, 0)),
        "kasm-user" | "default" => Ok((1000, 1000)),
        other => {
            let (u, g) = other.split_once(':').unwrap_or((other, other));
            let uid = u.parse::<u32>().map_err(|_| unknown())?;
            let gid = g.parse::<u32>().map_err(|_| unknown())?;
            Ok((uid, gid))
        }
    }
}

/// Send a signal to a process group; false when the group no longer exists.
fn signal_group(pgid: i32, signal: Signal) -> bool {
    if pgid <= 1 {
        return false;
    }
    !matches!(killpg(Pid::from_raw(pgid), signal), Err(Errno::ESRCH))
}

/// Whether any process of the group still exists.
pub fn group_alive(pgid: i32) -> bool {
    pgid > 1 && !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The first `program` on the simulator's PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The first `bwrap` on PATH that can actually build a sandbox here.
async fn usable_bwrap() -> Option<PathBuf> {
    let bwrap = on_path("bwrap")?;
    let probe = tokio::process::Command::new(&bwrap)
        .args([
            "--ro-bind",
            "/",
            "/",
            "--unshare-pid",
            "--proc",
            "/proc",
            "--",
        ])
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    match probe {
        Ok(status) if status.success() => Some(bwrap),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_container_paths() {
        let home = Path::new("/sb/k/home");
        let tmp = Path::new("/sb/k/tmp");
        assert_eq!(
            container_path_on_host("/home/kasm-user/a/b", home, tmp, true),
            PathBuf::from("/sb/k/home/a/b")
        );
        assert_eq!(
            container_path_on_host("/tmp/x", home, tmp, true),
            PathBuf::from("/sb/k/tmp/x")
        );
        assert_eq!(
            container_path_on_host("/tmp/x", home, tmp, false),
            PathBuf::from("/tmp/x")
        );
        assert_eq!(
            container_path_on_host("/etc", home, tmp, true),
            PathBuf::from("/etc")
        );
    }

    #[test]
    fn resolves_docker_users() {
        assert_eq!(resolve_user("root").unwrap(), (0, 0));
        assert_eq!(resolve_user("kasm-user").unwrap(), (1000, 1000));
        assert_eq!(resolve_user("1001:1002").unwrap(), (1001, 1002));
        assert!(resolve_user("nobody-here").is_err());
    }

    #[test]
    fn env_is_clean_and_extendable() {
        let mut extra = BTreeMap::new();
        extra.insert("FOO".to_string(), "bar".to_string());
        let env = container_env("/h", &extra);
        assert_eq!(env.get("HOME").map(String::as_str), Some("/h"));
        assert_eq!(env.get("FOO").map(String::as_str), Some("bar"));
        assert!(!env.contains_key("KASM_SIM_API_SECRET"));
    }

    #[tokio::test]
    async fn directory_mode_runs_in_the_session_home() {
        let root =
            std::env::temp_dir().join(format!("sbx-{}", super::super::config::random_hex(4)));
        let sandbox = Arc::new(
            Sandbox::new(&root, SandboxMode::Directory, 4)
                .await
                .unwrap(),
        );
        sandbox.prepare("k1").await.unwrap();
        let spec = ExecSpec {
            argv: vec!["sh".into(), "-c".into(), "echo $HOME > out".into()],
            ..ExecSpec::default()
        };
        let pgid = sandbox.exec("k1", spec).unwrap();
        let out = sandbox.home_dir("k1").join("out");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !out.exists() || std::fs::read_to_string(&out).unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "command never ran");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let home = sandbox.home_dir("k1");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap().trim(),
            home.to_string_lossy()
        );
        assert!(pgid > 1);
        sandbox.kill_all_and_clean();
        assert!(!root.exists());
    }
}
