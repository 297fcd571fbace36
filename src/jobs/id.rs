//! [`JobId`]: 128 random bits as 32 lowercase hex digits, parsed at the edge.

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A job's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        JobId(hex::encode(raw))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(JobId(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "job_id {text:?} is not a job id: use the 32-hex-digit job_id that execute_kasm_command or list_commands returned"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl schemars::JsonSchema for JobId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("JobId")
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^\\s*[0-9a-fA-F]{32}\\s*$",
            "description": "A job id: 32 hex digits, as execute_kasm_command or list_commands returned it.",
        })
    }
}

impl TryFrom<String> for JobId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        JobId::parse(&value)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_parse_back() {
        let a = JobId::random();
        assert_ne!(a, JobId::random());
        assert_eq!(JobId::parse(a.as_str()).unwrap(), a);
        assert!(JobId::parse("../x").is_err());
        assert!(JobId::parse("abc").is_err());
    }
}
