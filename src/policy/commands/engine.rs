//! The command policy: compiled rules, the mode, and the decision for one command text.
//!
//! Every simple command, redirection target and unresolved part of the text is judged on
//! its own and the strictest decision wins (`deny` > `confirm` > `allow`). In deny-list mode
//! a command no rule matches is allowed; in allow-list mode it is denied unless an `allow`
//! rule matches it. A rule that only *may* match (an argument it looks at is `$X`) gives the
//! milder of its decision and the `unresolved` decision.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::extract::extract;
use super::model::{Decision, Extraction};
use super::rules::{Hit, Rule, RuleSpec};
use crate::policy::Role;

/// Rule id of the built-in check for self-recursive functions (`:(){ :|:& };:`).
pub const FORK_BOMB_RULE: &str = "fork-bomb";
/// Rule id given to parts of a command that cannot be judged statically.
pub const UNRESOLVED_RULE: &str = "unresolved";
/// Rule id given, in allow-list mode, to commands no `allow` rule matches.
pub const NOT_ALLOW_LISTED_RULE: &str = "not-allow-listed";

/// How commands no rule matches are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Everything runs unless a rule says otherwise (the default).
    #[default]
    DenyList,
    /// Only commands an `allow` rule matches run.
    AllowList,
}

/// Who asks, in which image: rules can be scoped to both.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub role: Role,
    /// Identifiers of the session's image (friendly name, image id); empty when unknown.
    pub image: &'a [String],
}

/// One reason behind a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub decision: Decision,
    pub reason: String,
    /// The command or redirection the rule is about, as extracted (`rm -rf /`, `> /etc/x`).
    pub subject: String,
}

/// The decision for one command text and every finding behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// The first finding with the verdict's own decision (the one to show), if any.
    pub fn decisive(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.decision == self.decision)
    }
}

/// Why a policy cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Rule(String),
    #[error("rule {id:?} is declared twice in policy.commands.rules: give each rule its own id")]
    Duplicate { id: String },
    #[error(
        "policy.commands.disabled_rules names {id:?}, which is not a shipped rule: check the spelling (shipped ids are listed in config/policy.example.toml)"
    )]
    UnknownDisabled { id: String },
    #[error(
        "rule {id:?} contradicts its own example: it should {expected} `{example}` but does not; fix the rule's pattern or the example"
    )]
    Example {
        id: String,
        example: String,
        expected: &'static str,
    },
}

/// The `[policy.commands]` settings, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsSpec {
    pub mode: Mode,
    /// Decision for what cannot be judged statically; default: `confirm` in deny-list mode,
    /// `deny` in allow-list mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<Decision>,
    /// Whether the shipped rules (config/policy.example.toml) are in force.
    pub default_rules: bool,
    /// Ids of shipped rules to switch off (and `fork-bomb`).
    pub disabled_rules: Vec<String>,
    /// The operator's own rules; one with a shipped rule's id replaces it.
    pub rules: Vec<RuleSpec>,
}

impl Default for CommandsSpec {
    fn default() -> Self {
        CommandsSpec {
            mode: Mode::DenyList,
            unresolved: None,
            default_rules: true,
            disabled_rules: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// A compiled, self-checked command policy.
#[derive(Debug, Clone)]
pub struct CommandPolicy {
    mode: Mode,
    unresolved: Decision,
    fork_bomb: bool,
    rules: Vec<Rule>,
}

impl CommandPolicy {
    /// Compile `spec` over the `shipped` rules and verify every rule's examples.
    pub fn compile(
        spec: &CommandsSpec,
        shipped: &[RuleSpec],
    ) -> Result<CommandPolicy, PolicyError> {
        let mut seen = HashSet::new();
        for rule in &spec.rules {
            if !seen.insert(rule.id.as_str()) {
                return Err(PolicyError::Duplicate {
                    id: rule.id.clone(),
                });
            }
        }
        for id in &spec.disabled_rules {
            if id != FORK_BOMB_RULE && !shipped.iter().any(|r| &r.id == id) {
                return Err(PolicyError::UnknownDisabled { id: id.clone() });
            }
        }
        let mut specs: Vec<&RuleSpec> = Vec::new();
        if spec.default_rules {
            specs.extend(
                shipped.iter().filter(|r| {
                    !spec.disabled_rules.contains(&r.id) && !seen.contains(r.id.as_str())
                }),
            );
        }
        specs.extend(spec.rules.iter());
        let rules = specs
            .into_iter()
            .map(Rule::compile)
            .collect::<Result<Vec<_>, _>>()
            .map_err(PolicyError::Rule)?;
        let policy = CommandPolicy {
            mode: spec.mode,
            unresolved: spec.unresolved.unwrap_or(match spec.mode {
                Mode::DenyList => Decision::Confirm,
                Mode::AllowList => Decision::Deny,
            }),
            fork_bomb: spec.default_rules
                && !spec.disabled_rules.iter().any(|r| r == FORK_BOMB_RULE),
            rules,
        };
        policy.verify_examples()?;
        Ok(policy)
    }

    /// A policy that asks for nothing and denies everything (the fail-closed fallback).
    pub fn deny_all() -> CommandPolicy {
        CommandPolicy {
            mode: Mode::AllowList,
            unresolved: Decision::Deny,
            fork_bomb: true,
            rules: Vec::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Ids of the rules in force, in order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    fn verify_examples(&self) -> Result<(), PolicyError> {
        for rule in &self.rules {
            for (examples, expected, want) in [
                (&rule.examples, "match", true),
                (&rule.not_match, "not match", false),
            ] {
                for example in examples {
                    if rule_hits(rule, &extract(example)) != want {
                        return Err(PolicyError::Example {
                            id: rule.id.clone(),
                            example: example.clone(),
                            expected,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Decide on `text` for this caller and image.
    pub fn evaluate(&self, text: &str, scope: Scope<'_>) -> Verdict {
        let extraction = extract(text);
        let mut findings = Vec::new();
        for why in &extraction.unresolved {
            findings.push(Finding {
                rule_id: UNRESOLVED_RULE.into(),
                decision: self.unresolved,
                reason: format!("cannot be judged before it runs: {why}"),
                subject: String::new(),
            });
        }
        if self.fork_bomb {
            for name in &extraction.recursive_functions {
                findings.push(Finding {
                    rule_id: FORK_BOMB_RULE.into(),
                    decision: Decision::Deny,
                    reason: format!(
                        "function `{name}` calls itself: the fork-bomb pattern that exhausts the container's process table"
                    ),
                    subject: format!("{name}() {{ … {name} … }}"),
                });
            }
        }
        let rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.applies(scope.role, scope.image))
            .collect();
        for command in &extraction.commands {
            let subject = command.display();
            let mut allowed = false;
            for rule in &rules {
                let hit = rule.check_command(command);
                allowed |= hit == Hit::Yes && rule.decision == Decision::Allow;
                self.record(&mut findings, rule, hit, &subject);
            }
            if self.mode == Mode::AllowList && !allowed {
                findings.push(Finding {
                    rule_id: NOT_ALLOW_LISTED_RULE.into(),
                    decision: Decision::Deny,
                    reason: format!(
                        "`{}` is not on this server's allow-list (policy.commands.mode = \"allow-list\")",
                        command.program
                    ),
                    subject: subject.clone(),
                });
            }
        }
        for redirect in &extraction.redirects {
            let subject = format!("> {}", redirect.target.as_deref().unwrap_or("…"));
            for rule in &rules {
                self.record(
                    &mut findings,
                    rule,
                    rule.check_redirect(&redirect.target),
                    &subject,
                );
            }
        }
        let mut unique = HashSet::new();
        findings
            .retain(|f| unique.insert((f.rule_id.clone(), f.subject.clone(), f.reason.clone())));
        let decision = findings
            .iter()
            .map(|f| f.decision)
            .max()
            .unwrap_or(Decision::Allow);
        Verdict { decision, findings }
    }

    fn record(&self, findings: &mut Vec<Finding>, rule: &Rule, hit: Hit, subject: &str) {
        let (decision, reason) = match hit {
            Hit::No => return,
            Hit::Yes if rule.decision == Decision::Allow => return,
            Hit::Yes => (rule.decision, rule.reason.clone()),
            Hit::Maybe if rule.decision == Decision::Allow => return,
            Hit::Maybe => (
                rule.decision.min(self.unresolved),
                format!(
                    "{} (the rule may apply: some words are only known when the command runs)",
                    rule.reason
                ),
            ),
        };
        findings.push(Finding {
            rule_id: rule.id.clone(),
            decision,
            reason,
            subject: subject.to_string(),
        });
    }
}

/// Whether `rule` surely matches something in `extraction` (scope ignored: examples test the
/// pattern).
fn rule_hits(rule: &Rule, extraction: &Extraction) -> bool {
    extraction
        .commands
        .iter()
        .any(|c| rule.check_command(c) == Hit::Yes)
        || extraction
            .redirects
            .iter()
            .any(|r| rule.check_redirect(&r.target) == Hit::Yes)
}
