//! Environment variable names a caller may set for `execute_kasm_command` (pure, no I/O):
//! POSIX name syntax, and a configurable deny-list of names that change how programs load or
//! how shells start (`LD_PRELOAD`, `BASH_ENV`, …) — they turn "run this command" into "run
//! this code first", past the command rules.

use serde::{Deserialize, Serialize};

/// Longest name accepted.
pub const MAX_ENV_NAME_BYTES: usize = 256;

/// `[policy.env]`: names refused unless allowed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvNamePolicy {
    /// Names refused; an entry ending in `*` refuses every name with that prefix (`LD_*`).
    pub denied: Vec<String>,
    /// Names taken off `denied` (e.g. `["PATH"]`).
    pub allowed: Vec<String>,
}

impl Default for EnvNamePolicy {
    fn default() -> Self {
        EnvNamePolicy {
            denied: [
                "LD_PRELOAD",
                "LD_LIBRARY_PATH",
                "LD_AUDIT",
                "BASH_ENV",
                "ENV",
                "PROMPT_COMMAND",
                "PATH",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            allowed: Vec::new(),
        }
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvNameError {
    #[error(
        "environment variable name {0:?} is not a valid name: use letters, digits and underscores, not starting with a digit (at most 256 bytes)"
    )]
    Syntax(String),
    #[error(
        "environment variable {name} may not be set on this server ({why}); an administrator can allow it with policy.env.allowed = [\"{name}\"]"
    )]
    Denied { name: String, why: &'static str },
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_ENV_NAME_BYTES`].
pub fn is_posix_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_ENV_NAME_BYTES
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn listed(list: &[String], name: &str) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => entry == name,
    })
}

fn why(name: &str) -> &'static str {
    match name {
        n if n.starts_with("LD_") => "it makes the dynamic loader run or find other code",
        "BASH_ENV" | "ENV" | "PROMPT_COMMAND" => "it makes the shell run other code first",
        "PATH" => "it changes which program a command name runs",
        _ => "it is on policy.env.denied",
    }
}

impl EnvNamePolicy {
    /// Check the policy's own entries (names, or prefixes ending in `*`).
    pub fn validate(&self) -> Result<(), String> {
        for entry in self.denied.iter().chain(&self.allowed) {
            let name = entry.strip_suffix('*').unwrap_or(entry);
            if !(is_posix_name(name) || (name.is_empty() && entry == "*")) {
                return Err(format!(
                    "policy.env: {entry:?} is not an environment variable name (or a prefix ending in *)"
                ));
            }
        }
        Ok(())
    }

    /// Whether a caller may set `name`.
    pub fn check(&self, name: &str) -> Result<(), EnvNameError> {
        if !is_posix_name(name) {
            return Err(EnvNameError::Syntax(name.chars().take(64).collect()));
        }
        if listed(&self.denied, name) && !listed(&self.allowed, name) {
            return Err(EnvNameError::Denied {
                name: name.to_string(),
                why: why(name),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_against_syntax_and_the_deny_list() {
        let policy = EnvNamePolicy::default();
        let table: &[(&str, bool)] = &[
            ("LANG", true),
            ("_x1", true),
            ("MY_VAR_2", true),
            ("LD_PRELOAD", false),
            ("LD_LIBRARY_PATH", false),
            ("LD_AUDIT", false),
            ("BASH_ENV", false),
            ("ENV", false),
            ("PROMPT_COMMAND", false),
            ("PATH", false),
            ("PATHX", true),
            ("1X", false),
            ("", false),
            ("A-B", false),
            ("A=B", false),
            ("BASH_FUNC_x%%", false),
            ("É", false),
            ("A B", false),
        ];
        for (name, ok) in table {
            assert_eq!(policy.check(name).is_ok(), *ok, "{name}");
        }
        assert!(matches!(
            policy.check("PATH"),
            Err(EnvNameError::Denied { .. })
        ));
        assert!(matches!(policy.check("1X"), Err(EnvNameError::Syntax(_))));
        assert!(policy.check(&"A".repeat(257)).is_err());
    }

    #[test]
    fn allowed_names_and_prefixes_override_the_deny_list() {
        let policy = EnvNamePolicy {
            denied: vec!["LD_*".into(), "PATH".into()],
            allowed: vec!["PATH".into()],
        };
        assert!(policy.check("PATH").is_ok());
        assert!(policy.check("LD_BIND_NOW").is_err());
        let message = policy.check("LD_PRELOAD").unwrap_err().to_string();
        assert!(message.contains("policy.env.allowed"), "{message}");
        assert!(policy.validate().is_ok());
        let bad = EnvNamePolicy {
            denied: vec!["NOT A NAME".into()],
            allowed: vec![],
        };
        assert!(bad.validate().is_err());
    }
}
