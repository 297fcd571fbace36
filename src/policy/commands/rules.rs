//! Rules: how they are written in the configuration ([`RuleSpec`]), compiled ([`Rule`]) and
//! matched against one extracted command or redirection target.
//!
//! A command rule is an argv prefix (`pattern`, each element a glob or a list of alternative
//! globs, element 0 matching the program's base name) plus optional conditions on the rest of
//! the arguments: `args` (every group must be matched by some argument), `unless_args` (no
//! argument may match), `last_arg`, and `piped_from` (a program earlier in the same pipeline).
//! A redirection rule lists `redirect_to` globs for output redirection targets. Arguments that
//! start with `/` are also compared in lexically normalised form (`//etc/./` is `/etc`).

use serde::{Deserialize, Serialize};

use super::glob::Glob;
use super::model::{Decision, SimpleCommand, Word};
use crate::policy::Role;

/// One pattern element: a glob, or a list of alternatives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PatternElement {
    One(String),
    AnyOf(Vec<String>),
}

/// A rule as written in `[[policy.commands.rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name, shown to callers and in the audit log (letters, digits, `-`, `_`, `.`).
    pub id: String,
    pub decision: Decision,
    /// Why: shown to the caller and to the human asked to approve.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pattern: Vec<PatternElement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<PatternElement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless_args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_arg: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub piped_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_to: Vec<String>,
    /// Roles the rule applies to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Images (friendly name or image id, globs) the rule applies to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Command lines the rule must match (checked when the policy loads).
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// Command lines the rule must not match (checked when the policy loads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_match: Vec<String>,
}

/// Whether a rule matches: surely, possibly (a word it depends on is only known at run time),
/// or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hit {
    No,
    Maybe,
    Yes,
}

#[derive(Debug, Clone)]
enum Kind {
    Command {
        pattern: Vec<Vec<Glob>>,
        args: Vec<Vec<Glob>>,
        unless_args: Vec<Glob>,
        last_arg: Vec<Glob>,
        piped_from: Vec<Glob>,
    },
    Redirect(Vec<Glob>),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub decision: Decision,
    pub reason: String,
    kind: Kind,
    roles: Vec<Role>,
    images: Vec<Glob>,
    pub examples: Vec<String>,
    pub not_match: Vec<String>,
}

fn globs(id: &str, sources: &[String]) -> Result<Vec<Glob>, String> {
    sources
        .iter()
        .map(|s| Glob::new(s).map_err(|e| format!("rule {id:?}: {e}")))
        .collect()
}

fn element(id: &str, e: &PatternElement) -> Result<Vec<Glob>, String> {
    match e {
        PatternElement::One(s) => globs(id, std::slice::from_ref(s)),
        PatternElement::AnyOf(list) if list.is_empty() => Err(format!(
            "rule {id:?}: an empty list of alternatives never matches"
        )),
        PatternElement::AnyOf(list) => globs(id, list),
    }
}

impl Rule {
    /// Compile a rule; errors name the rule and what to fix.
    pub fn compile(spec: &RuleSpec) -> Result<Rule, String> {
        let id = spec.id.as_str();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "rule id {id:?} must be non-empty and use only letters, digits, '-', '_' and '.'"
            ));
        }
        if spec.reason.trim().is_empty() {
            return Err(format!(
                "rule {id:?} needs a reason (it is shown to callers)"
            ));
        }
        let kind = match (spec.pattern.is_empty(), spec.redirect_to.is_empty()) {
            (false, true) => Kind::Command {
                pattern: spec
                    .pattern
                    .iter()
                    .map(|e| element(id, e))
                    .collect::<Result<_, _>>()?,
                args: spec
                    .args
                    .iter()
                    .map(|e| element(id, e))
                    .collect::<Result<_, _>>()?,
                unless_args: globs(id, &spec.unless_args)?,
                last_arg: globs(id, &spec.last_arg)?,
                piped_from: globs(id, &spec.piped_from)?,
            },
            (true, false) => {
                let conditions = !spec.args.is_empty()
                    || !spec.unless_args.is_empty()
                    || !spec.last_arg.is_empty()
                    || !spec.piped_from.is_empty();
                if conditions {
                    return Err(format!(
                        "rule {id:?}: args, unless_args, last_arg and piped_from belong to command rules (with pattern), not to redirect_to rules"
                    ));
                }
                Kind::Redirect(globs(id, &spec.redirect_to)?)
            }
            _ => {
                return Err(format!(
                    "rule {id:?} needs exactly one of pattern (a command rule) or redirect_to (a redirection rule)"
                ));
            }
        };
        let roles = spec
            .roles
            .iter()
            .map(|r| r.parse::<Role>().map_err(|e| format!("rule {id:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Rule {
            id: spec.id.clone(),
            decision: spec.decision,
            reason: spec.reason.clone(),
            kind,
            roles,
            images: globs(id, &spec.images)?,
            examples: spec.examples.clone(),
            not_match: spec.not_match.clone(),
        })
    }

    /// Whether the rule is in force for this caller and image (identifiers: name and id).
    pub fn applies(&self, role: Role, image: &[String]) -> bool {
        (self.roles.is_empty() || self.roles.contains(&role))
            && (self.images.is_empty()
                || self
                    .images
                    .iter()
                    .any(|g| image.iter().any(|i| g.matches(i))))
    }

    /// How this rule matches one command.
    pub fn check_command(&self, command: &SimpleCommand) -> Hit {
        let Kind::Command {
            pattern,
            args,
            unless_args,
            last_arg,
            piped_from,
        } = &self.kind
        else {
            return Hit::No;
        };
        let Some((first, rest_pattern)) = pattern.split_first() else {
            return Hit::No;
        };
        if !any_matches(first, &command.program) {
            return Hit::No;
        }
        let mut hit = Hit::Yes;
        for (i, alternatives) in rest_pattern.iter().enumerate() {
            hit = hit.min(match command.args.get(i) {
                Some(Some(word)) if any_matches(alternatives, word) => Hit::Yes,
                Some(Some(_)) => Hit::No,
                Some(None) => Hit::Maybe,
                None if command.open_args => Hit::Maybe,
                None => Hit::No,
            });
        }
        let rest = command.args.get(rest_pattern.len()..).unwrap_or_default();
        let unknown = command.open_args || rest.iter().any(Option::is_none);
        if rest
            .iter()
            .flatten()
            .any(|word| any_matches(unless_args, word))
        {
            return Hit::No;
        }
        for group in args {
            let found = rest.iter().flatten().any(|word| any_matches(group, word));
            hit = hit.min(match (found, unknown) {
                (true, _) => Hit::Yes,
                (false, true) => Hit::Maybe,
                (false, false) => Hit::No,
            });
        }
        if !last_arg.is_empty() {
            hit = hit.min(match (command.args.last(), command.open_args) {
                (_, true) | (Some(None), _) => Hit::Maybe,
                (Some(Some(word)), false) if any_matches(last_arg, word) => Hit::Yes,
                _ => Hit::No,
            });
        }
        if !piped_from.is_empty()
            && !command
                .piped_from
                .iter()
                .any(|program| any_matches(piped_from, program))
        {
            return Hit::No;
        }
        hit
    }

    /// How this rule matches one output redirection target.
    pub fn check_redirect(&self, target: &Word) -> Hit {
        let Kind::Redirect(targets) = &self.kind else {
            return Hit::No;
        };
        match target {
            Some(path) if any_matches(targets, path) => Hit::Yes,
            Some(_) => Hit::No,
            None => Hit::Maybe,
        }
    }
}

fn any_matches(globs: &[Glob], word: &str) -> bool {
    let normal = word.starts_with('/').then(|| normalise_path(word));
    globs
        .iter()
        .any(|g| g.matches(word) || normal.as_deref().is_some_and(|n| g.matches(n)))
}

/// Lexical normalisation of an absolute path: `//` and `/./` collapse, `..` pops a component,
/// a trailing `/` goes (`/` stays `/`).
pub fn normalise_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_lexically() {
        for (raw, want) in [
            ("/", "/"),
            ("//", "/"),
            ("/etc/", "/etc"),
            ("/./etc//x/../", "/etc"),
            ("/../..", "/"),
            ("/usr/lib/../../etc", "/etc"),
        ] {
            assert_eq!(normalise_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn bad_rules_are_refused_with_their_id() {
        let base = RuleSpec {
            id: "r1".into(),
            decision: Decision::Deny,
            reason: "because".into(),
            pattern: vec![PatternElement::One("rm".into())],
            args: vec![],
            unless_args: vec![],
            last_arg: vec![],
            piped_from: vec![],
            redirect_to: vec![],
            roles: vec![],
            images: vec![],
            examples: vec![],
            not_match: vec![],
        };
        assert!(Rule::compile(&base).is_ok());
        let cases = [
            RuleSpec {
                id: "bad id!".into(),
                ..base.clone()
            },
            RuleSpec {
                reason: " ".into(),
                ..base.clone()
            },
            RuleSpec {
                pattern: vec![],
                ..base.clone()
            },
            RuleSpec {
                redirect_to: vec!["/etc/**".into()],
                ..base.clone()
            },
            RuleSpec {
                pattern: vec![PatternElement::One("[x".into())],
                ..base.clone()
            },
            RuleSpec {
                roles: vec!["root".into()],
                ..base.clone()
            },
            RuleSpec {
                pattern: vec![PatternElement::AnyOf(vec![])],
                ..base.clone()
            },
        ];
        for spec in cases {
            let err = Rule::compile(&spec).unwrap_err();
            assert!(err.contains("rule"), "{err}");
        }
    }
}
