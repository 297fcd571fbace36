//! The names under which a wrapper's inputs travel: each [`Var`] is one environment variable
//! of the exec (set by [`super::WrapperInput::environment`]) and one shell variable of the
//! script (copied and unset by the generated prologue), so the tools and the script text
//! cannot disagree on a name.

/// One input of a wrapper script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// Seconds the server waits for the result (the upload's retry budget).
    Budget,
    /// Seconds after which a temp file of a killed wrapper counts as stale (without `flock`).
    Stale,
    /// The user's command text.
    Cmd,
    /// The command's working directory (empty: the exec's default).
    Cwd,
    /// The command's timeout in seconds.
    Timeout,
    /// Bytes of stdout and of stderr kept.
    Cap,
    /// Space-separated names of the caller's environment variables (values in
    /// `KMCP_E_<name>`), applied to the user's command only.
    EnvNames,
    /// The file or directory path.
    Path,
    /// Allowed roots, one per line.
    Roots,
    /// Most bytes read, or most entries listed.
    Max,
    /// Bytes the write downloads.
    Size,
    /// `1` to create missing parent directories.
    Parents,
    /// Octal mode of a written file (empty: keep a regular file's mode, else the umask's).
    Mode,
    /// Random tag naming the file whose appearance stops the command (see
    /// [`super::shell::cancel_text`]); empty: no cancel watch.
    Cancel,
    /// The job id (names the spill directory).
    Job,
    /// Most bytes per output chunk.
    Chunk,
    /// Seconds between output chunks (a decimal such as `0.3`).
    Interval,
}

/// The variable that carries the ticket line to the first stage (never copied to stage 2's
/// environment).
pub const TICKETS_ENV: &str = "KMCP_TICKETS";
/// Prefix of the variables carrying the caller's environment values.
pub const USER_ENV_PREFIX: &str = "KMCP_E_";

impl Var {
    /// The environment variable name.
    pub fn env(self) -> &'static str {
        match self {
            Var::Budget => "KMCP_BUDGET",
            Var::Stale => "KMCP_STALE",
            Var::Cmd => "KMCP_CMD",
            Var::Cwd => "KMCP_CWD",
            Var::Timeout => "KMCP_TIMEOUT",
            Var::Cap => "KMCP_CAP",
            Var::EnvNames => "KMCP_ENV",
            Var::Path => "KMCP_PATH",
            Var::Roots => "KMCP_ROOTS",
            Var::Max => "KMCP_MAX",
            Var::Size => "KMCP_SIZE",
            Var::Parents => "KMCP_PARENTS",
            Var::Mode => "KMCP_MODE",
            Var::Cancel => "KMCP_CANCEL",
            Var::Job => "KMCP_JOB",
            Var::Chunk => "KMCP_CHUNK",
            Var::Interval => "KMCP_INTERVAL",
        }
    }

    /// The shell variable the script reads (`kmcp_` + the lower-case suffix).
    pub fn shell(self) -> String {
        self.env().to_ascii_lowercase()
    }
}

/// Which wrapper to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Exec,
    /// Exec with output streamed in chunks and spilled to files (jobs).
    Stream,
    Read,
    Write,
    List,
    /// Exec without a relay: run the command, return nothing.
    Dispatch,
}

impl Script {
    /// The inputs this script reads.
    pub fn vars(self) -> &'static [Var] {
        use Var::*;
        match self {
            Script::Exec => &[Budget, Stale, Cmd, Cwd, Timeout, Cap, EnvNames, Cancel],
            Script::Stream => &[
                Budget, Stale, Cmd, Cwd, Timeout, Cap, EnvNames, Job, Chunk, Interval,
            ],
            Script::Dispatch => &[Cmd, Cwd, EnvNames],
            Script::Read | Script::List => &[Budget, Stale, Path, Roots, Max],
            Script::Write => &[Budget, Stale, Path, Roots, Size, Parents, Mode],
        }
    }

    /// The record kind the script uploads (`None` for dispatch).
    pub fn kind(self) -> Option<&'static str> {
        match self {
            Script::Exec | Script::Stream => Some("EXEC"),
            Script::Read => Some("READ"),
            Script::Write => Some("WRITE"),
            Script::List => Some("LIST"),
            Script::Dispatch => None,
        }
    }
}
