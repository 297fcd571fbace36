//! The shapes the command extractor produces and the rules consume: decisions, simple
//! commands with their statically known words, redirection targets, and what could not be
//! resolved.

use serde::{Deserialize, Serialize};

/// What the policy says about a command. Ordered from the most to the least permissive, so
/// the strictest of several decisions is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Runs without asking.
    Allow,
    /// Runs only after a human approves it (MCP elicitation).
    Confirm,
    /// Never runs.
    Deny,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Allow => "allow",
            Decision::Confirm => "confirm",
            Decision::Deny => "deny",
        })
    }
}

/// One word of a command line: its text when it is known before the shell runs (quotes and
/// escapes removed), `None` when it depends on an expansion (`$X`, `$(…)`, `` `…` ``, …).
pub type Word = Option<String>;

/// A simple command as it will run, after wrappers (`sudo`, `env`, `xargs`, …) were peeled
/// off and `argv[0]` reduced to its base name (`/bin/rm` → `rm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    /// `argv[0]` is always known (a command whose name is not known is unresolved instead).
    pub program: String,
    /// The arguments after the program.
    pub args: Vec<Word>,
    /// More arguments are appended at run time (`xargs`, `find -exec … {}`).
    pub open_args: bool,
    /// Programs of the commands that feed this one through a pipe (`curl … | sh`).
    pub piped_from: Vec<String>,
}

impl SimpleCommand {
    /// The command as shown to people: words joined by spaces, unknown words as `…`.
    pub fn display(&self) -> String {
        let mut out = self.program.clone();
        for arg in &self.args {
            out.push(' ');
            out.push_str(arg.as_deref().unwrap_or("…"));
        }
        if self.open_args {
            out.push_str(" …");
        }
        out
    }
}

/// An output redirection (`>`, `>>`, `&>`, `>|`, `<>`) and where it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub target: Word,
}

/// Everything the extractor found in a command text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    pub commands: Vec<SimpleCommand>,
    pub redirects: Vec<Redirect>,
    /// Why parts of the text cannot be judged statically (`eval`, `$cmd`, parse errors, …).
    pub unresolved: Vec<String>,
    /// Names of functions that call themselves (`:(){ :|:& };:`).
    pub recursive_functions: Vec<String>,
}
