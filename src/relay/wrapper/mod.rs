//! The POSIX `sh` wrapper scripts sent through `exec_command_kasm`, one per purpose.
//!
//! The script text is constant: everything that varies (the user's command, paths, limits,
//! the tickets) is a [`WrapperInput`], rendered into `exec_config.environment` under the
//! names of [`Var`], so no user text is ever pasted into shell code. The `sh -c` argument
//! is quoted with shlex, so Kasm's shell-style split of `exec_config.cmd` yields exactly
//! `["sh", "-c", script]`. How the tickets are kept from the user's command is described in
//! `shell.rs` and in `docs/SECURITY.md` (the relay's trust model).

mod input;
mod shell;
mod vars;

pub use input::{
    CommandJob, Endpoint, Job, PathJob, StreamJob, Tickets, WrapperInput, WriteJob,
    cancel_exec_config, command_line,
};
pub use vars::{Script, TICKETS_ENV, USER_ENV_PREFIX, Var};

impl Script {
    /// The full script text (constant per purpose).
    pub fn text(self) -> String {
        shell::text(self)
    }
}

/// Whether an environment variable name is acceptable for a user's command.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("KMCP_")
}

#[cfg(test)]
mod tests;
