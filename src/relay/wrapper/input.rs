//! [`WrapperInput`]: everything one wrapper run needs, as one typed value shared by the tools
//! (which fill it) and the script generator (whose prologue reads the same [`Var`] names).

use std::collections::BTreeMap;

use super::shell;
use super::vars::{Script, TICKETS_ENV, Var};
use crate::kasm::ExecConfig;

/// A user command to run (exec with a relay, or dispatch-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandJob {
    pub command: String,
    /// Absolute, normalised working directory.
    pub cwd: Option<String>,
    pub timeout_s: u64,
    /// Bytes of stdout and of stderr kept in the container (one more than returned, so a
    /// cut is visible).
    pub cap: usize,
    /// The caller's variables (validated names), for the user's command only.
    pub env: BTreeMap<String, String>,
    /// Tag of the cancel file that stops the command when it appears (exec only; hex).
    pub cancel_tag: Option<String>,
}

/// A command whose output is streamed in chunks and spilled to files (a job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamJob {
    pub command: CommandJob,
    /// The job id (32 hex digits): the spill directory's name.
    pub job_id: String,
    /// Most bytes per chunk.
    pub chunk_bytes: usize,
    /// Milliseconds between chunks.
    pub interval_ms: u64,
}

/// A path-based file job (read or list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathJob {
    /// Normalised path inside the allowed roots.
    pub path: String,
    pub roots: Vec<String>,
    /// Most bytes read, or most entries listed.
    pub max: usize,
}

/// A file write (the bytes come from the download ticket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteJob {
    pub path: String,
    pub roots: Vec<String>,
    pub size: usize,
    pub create_parents: bool,
    /// Octal mode; `None`: a regular file's own mode, else the umask default.
    pub mode: Option<String>,
}

/// What the wrapper does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Exec(CommandJob),
    Stream(StreamJob),
    Dispatch(CommandJob),
    Read(PathJob),
    Write(WriteJob),
    List(PathJob),
}

/// A relay endpoint the wrapper talks to: URL and key (both secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub key: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Endpoint(..)")
    }
}

/// The relay endpoints of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tickets {
    /// Where the result is POSTed.
    pub upload: Endpoint,
    /// Where a write's bytes are fetched.
    pub download: Option<Endpoint>,
    /// Where a streamed job's chunks are POSTed.
    pub stream: Option<Endpoint>,
}

/// One wrapper run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperInput {
    pub job: Job,
    /// `None` only for [`Job::Dispatch`].
    pub tickets: Option<Tickets>,
    /// Seconds the server waits for the result: the wrapper retries its upload within it.
    pub budget_s: u64,
    /// Seconds after which a killed wrapper's temp files are stale (used without `flock`).
    pub stale_after_s: u64,
}

impl WrapperInput {
    /// The script this input runs.
    pub fn script(&self) -> Script {
        match self.job {
            Job::Exec(_) => Script::Exec,
            Job::Stream(_) => Script::Stream,
            Job::Dispatch(_) => Script::Dispatch,
            Job::Read(_) => Script::Read,
            Job::Write(_) => Script::Write,
            Job::List(_) => Script::List,
        }
    }

    fn value(&self, var: Var) -> Option<String> {
        let roots = |r: &[String]| Some(r.join("\n"));
        match (&self.job, var) {
            (_, Var::Budget) => Some(self.budget_s.to_string()),
            (_, Var::Stale) => Some(self.stale_after_s.to_string()),
            (Job::Stream(s), Var::Job) => Some(s.job_id.clone()),
            (Job::Stream(s), Var::Chunk) => Some(s.chunk_bytes.to_string()),
            (Job::Stream(s), Var::Interval) => Some(format!(
                "{}.{:03}",
                s.interval_ms / 1000,
                s.interval_ms % 1000
            )),
            (Job::Exec(c) | Job::Dispatch(c) | Job::Stream(StreamJob { command: c, .. }), var) => {
                match var {
                    Var::Cmd => Some(c.command.clone()),
                    Var::Cwd => c.cwd.clone(),
                    Var::Timeout => Some(c.timeout_s.to_string()),
                    Var::Cap => Some(c.cap.to_string()),
                    Var::EnvNames => (!c.env.is_empty())
                        .then(|| c.env.keys().cloned().collect::<Vec<_>>().join(" ")),
                    Var::Cancel => c.cancel_tag.clone(),
                    _ => None,
                }
            }
            (Job::Read(p) | Job::List(p), var) => match var {
                Var::Path => Some(p.path.clone()),
                Var::Roots => roots(&p.roots),
                Var::Max => Some(p.max.to_string()),
                _ => None,
            },
            (Job::Write(w), var) => match var {
                Var::Path => Some(w.path.clone()),
                Var::Roots => roots(&w.roots),
                Var::Size => Some(w.size.to_string()),
                Var::Parents => Some(if w.create_parents { "1" } else { "0" }.into()),
                Var::Mode => w.mode.clone(),
                _ => None,
            },
        }
    }

    /// The exec's environment: every input of the script under its [`Var`] name, the
    /// caller's values under `KMCP_E_<name>`, and the ticket line.
    pub fn environment(&self) -> BTreeMap<String, String> {
        let script = self.script();
        let mut env: BTreeMap<String, String> = script
            .vars()
            .iter()
            .filter_map(|var| Some((var.env().to_string(), self.value(*var)?)))
            .collect();
        if let Job::Exec(c) | Job::Dispatch(c) | Job::Stream(StreamJob { command: c, .. }) =
            &self.job
        {
            for (name, value) in &c.env {
                env.insert(shell::user_env_var(name), value.clone());
            }
        }
        if let Some(t) = &self.tickets {
            let (get, get_key) = t
                .download
                .as_ref()
                .map_or(("-", "-"), |d| (d.url.as_str(), d.key.as_str()));
            let (put, put_key) = t
                .stream
                .as_ref()
                .map_or(("-", "-"), |s| (s.url.as_str(), s.key.as_str()));
            env.insert(
                TICKETS_ENV.to_string(),
                format!(
                    "{} {} {get} {get_key} {put} {put_key}",
                    t.upload.url, t.upload.key
                ),
            );
        }
        env
    }

    /// Bytes the environment takes in the exec (names, values, `=` and NUL of each).
    pub fn environment_bytes(&self) -> usize {
        self.environment()
            .iter()
            .map(|(k, v)| k.len().saturating_add(v.len()).saturating_add(2))
            .fold(0, usize::saturating_add)
    }

    /// The `ExecConfig` that runs this input as `user` (None = the image's default user).
    pub fn exec_config(&self, user: Option<String>) -> ExecConfig {
        ExecConfig {
            cmd: command_line(self.script()),
            environment: self.environment(),
            workdir: None,
            privileged: false,
            user,
        }
    }
}

/// The exec that stops the command of an exec wrapper started with `cancel_tag` (creates
/// its cancel file; the wrapper's watch then sends TERM, and KILL two seconds later).
pub fn cancel_exec_config(cancel_tag: &str, user: Option<String>) -> ExecConfig {
    ExecConfig {
        cmd: shlex::try_join(["sh", "-c", shell::cancel_text()])
            .unwrap_or_else(|_| "true".to_string()),
        environment: BTreeMap::from([(Var::Cancel.env().to_string(), cancel_tag.to_string())]),
        workdir: None,
        privileged: false,
        user,
    }
}

/// `exec_config.cmd` for a script: `sh -c '<script>'`, quoted for a shell-style split.
pub fn command_line(script: Script) -> String {
    let text = shell::text(script);
    // The scripts contain no NUL, so quoting cannot fail; fall back to a harmless no-op.
    shlex::try_join(["sh", "-c", text.as_str()]).unwrap_or_else(|_| "true".to_string())
}
