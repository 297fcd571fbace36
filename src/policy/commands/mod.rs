//! Command rules (pure, no I/O): the command text is parsed with a real shell parser
//! (tree-sitter-bash), every simple command is extracted — through pipelines, lists,
//! subshells, groups, `$( )` and backquotes, `sh -c` scripts and wrappers such as `sudo`,
//! `env` or `xargs` — and judged against argv-prefix and redirection rules that decide
//! `allow`, `confirm` or `deny`. The shipped rules live in `config/policy.example.toml`.
//!
//! Command rules are a speed bump for mistakes and careless agents, not a sandbox: the
//! container is the boundary.

mod engine;
mod extract;
mod glob;
#[cfg(test)]
mod hostile_tests;
mod model;
mod parse;
mod rules;
mod scanner_input;
mod unwrap;

pub use engine::{
    CommandPolicy, CommandsSpec, FORK_BOMB_RULE, Finding, Mode, NOT_ALLOW_LISTED_RULE, PolicyError,
    Scope, UNRESOLVED_RULE, Verdict,
};
pub use extract::extract;
pub use model::{Decision, Extraction, Redirect, SimpleCommand, Word};
pub use rules::{PatternElement, RuleSpec};
