//! `[policy.commands]`: the command policy's settings, compiled and self-checked while the
//! configuration loads, so a policy with a bad rule — or one that contradicts its own
//! `match`/`not_match` examples — stops the server at start-up with the rule's id.
//!
//! The shipped rules are `config/policy.example.toml`, embedded in the binary.

use std::sync::Arc;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};

use crate::policy::commands::{CommandPolicy, CommandsSpec, RuleSpec};

/// The shipped policy file (its `[[policy.commands.rules]]` are the default rules).
pub const SHIPPED_POLICY: &str = include_str!("../../config/policy.example.toml");

/// The shipped default rules.
pub fn shipped_rules() -> Result<Vec<RuleSpec>, String> {
    #[derive(Deserialize)]
    struct Shipped {
        #[serde(default)]
        rules: Vec<RuleSpec>,
    }
    Figment::from(Toml::string(SHIPPED_POLICY))
        .extract_inner::<Shipped>("policy.commands")
        .map(|s| s.rules)
        .map_err(|e| format!("the embedded config/policy.example.toml is invalid: {e}"))
}

/// `[policy.commands]`: the settings as written and the policy compiled from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "CommandsSpec", into = "CommandsSpec")]
pub struct CommandsConfig {
    spec: CommandsSpec,
    policy: Arc<CommandPolicy>,
}

impl CommandsConfig {
    pub fn spec(&self) -> &CommandsSpec {
        &self.spec
    }

    /// The compiled policy.
    pub fn policy(&self) -> &CommandPolicy {
        &self.policy
    }

    /// The compiled policy, shared (for evaluating on a blocking thread).
    pub fn shared_policy(&self) -> Arc<CommandPolicy> {
        Arc::clone(&self.policy)
    }
}

impl TryFrom<CommandsSpec> for CommandsConfig {
    type Error = String;

    fn try_from(spec: CommandsSpec) -> Result<Self, Self::Error> {
        let shipped = shipped_rules()?;
        let policy =
            CommandPolicy::compile(&spec, &shipped).map_err(|e| format!("policy.commands: {e}"))?;
        Ok(CommandsConfig {
            spec,
            policy: Arc::new(policy),
        })
    }
}

impl From<CommandsConfig> for CommandsSpec {
    fn from(config: CommandsConfig) -> Self {
        config.spec
    }
}

impl Default for CommandsConfig {
    /// The shipped rules in deny-list mode. Should they ever fail to compile (a unit test
    /// makes sure they do not), the fallback denies every command rather than allowing all.
    fn default() -> Self {
        let spec = CommandsSpec::default();
        CommandsConfig::try_from(spec.clone()).unwrap_or_else(|error| {
            tracing::error!(%error, "the shipped command policy does not compile; denying every command");
            CommandsConfig {
                spec,
                policy: Arc::new(CommandPolicy::deny_all()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::commands::Mode;

    #[test]
    fn the_shipped_rules_compile_and_pass_their_examples() {
        let shipped = shipped_rules().unwrap();
        assert!(shipped.len() >= 15, "{}", shipped.len());
        let policy = CommandPolicy::compile(&CommandsSpec::default(), &shipped).unwrap();
        assert_eq!(policy.rule_ids().count(), shipped.len());
        assert_eq!(CommandsConfig::default().policy().mode(), Mode::DenyList);
    }

    #[test]
    fn the_example_file_is_itself_a_loadable_commands_section() {
        #[derive(Deserialize)]
        struct Section {
            commands: CommandsConfig,
        }
        let section: Section = Figment::from(Toml::string(SHIPPED_POLICY))
            .extract_inner("policy")
            .unwrap();
        // Its rules replace the shipped rules of the same id: the same set, not twice.
        assert_eq!(
            section.commands.policy().rule_ids().count(),
            shipped_rules().unwrap().len()
        );
    }
}
