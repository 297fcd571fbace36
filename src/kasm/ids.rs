//! Kasm ids: UUIDs that Kasm prints as 32 hex digits without dashes and accepts either way.
//!
//! [`KasmId`], [`UserId`] and [`ImageId`] are parsed once, where a value enters the server
//! (a tool argument, a Kasm record): deserialising one normalises it, refuses anything that is
//! not a UUID with a message naming the parameter, and describes itself as a JSON Schema
//! string with a pattern, so the tool's input schema tells clients the accepted form.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

use super::KasmError;

/// A UUID with or without dashes, any case, surrounding blanks tolerated (what
/// [`normalize_id`] accepts).
pub const UUID_PATTERN: &str = r"^\s*([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\s*$";

/// Normalise a UUID given with or without dashes (any case) to Kasm's 32-lowercase-hex form.
///
/// Anything else is refused before it reaches Kasm, where a non-UUID makes PostgreSQL fail.
pub fn normalize_id(what: &str, raw: &str) -> Result<String, KasmError> {
    let trimmed = trim(raw);
    let bytes = trimmed.as_bytes();
    let refused = || {
        KasmError::InvalidArgument(format!(
            "{what} must be a UUID (32 hex digits, dashes optional), got {raw:?}"
        ))
    };
    if !is_uuid(bytes) {
        return Err(refused());
    }
    // One allocation of the final size, the digit groups copied whole and lowercased in place
    // (this runs several times per tool call; `char`s pushed one at a time cost ten times
    // more).
    let mut hex = Vec::with_capacity(32);
    if bytes.len() == 32 {
        hex.extend_from_slice(bytes);
    } else {
        for group in [0..8, 9..13, 14..18, 19..23, 24..36] {
            hex.extend_from_slice(&bytes[group]);
        }
    }
    hex.make_ascii_lowercase();
    // ASCII hex digits only (checked above), so this never refuses: were that check ever
    // loosened, a wrong id is refused here instead of passed on empty.
    String::from_utf8(hex).map_err(|_| refused())
}

/// `raw.trim()`, without its Unicode scan when `raw` starts and ends with a printable ASCII
/// byte (the usual case: then `trim` removes nothing).
fn trim(raw: &str) -> &str {
    let plain = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_graphic());
    let bytes = raw.as_bytes();
    if plain(bytes.first()) && plain(bytes.last()) {
        raw
    } else {
        raw.trim()
    }
}

/// 32 hex digits, or 8-4-4-4-12 hex digits with dashes.
fn is_uuid(s: &[u8]) -> bool {
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    match s.len() {
        32 => s.iter().all(u8::is_ascii_hexdigit),
        36 => s.iter().enumerate().all(|(i, b)| {
            if DASHES.contains(&i) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        }),
        _ => false,
    }
}

/// Declares a normalised Kasm UUID newtype: parse once, then pass around.
macro_rules! kasm_uuid {
    ($(#[$doc:meta])* $name:ident, $param:literal, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parse a UUID with or without dashes; the error names the parameter.
            pub fn parse(raw: &str) -> Result<Self, KasmError> {
                normalize_id($param, raw).map($name)
            }

            /// Kasm's form: 32 lowercase hex digits.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether `raw` (any accepted spelling) names this id.
            pub fn matches(&self, raw: &str) -> bool {
                normalize_id($param, raw).is_ok_and(|other| other == self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = KasmError;
            fn from_str(raw: &str) -> Result<Self, KasmError> {
                $name::parse(raw)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": UUID_PATTERN,
                    "description": $description,
                })
            }
        }
    };
}

kasm_uuid!(
    /// A session's `kasm_id`.
    KasmId,
    "kasm_id",
    "The session's kasm_id (a UUID, dashes optional), as returned by create_kasm_session or list_user_sessions."
);
kasm_uuid!(
    /// A Kasm user's `user_id`.
    UserId,
    "user_id",
    "A Kasm user_id (a UUID, dashes optional), as listed by get_kasm_users."
);
kasm_uuid!(
    /// A workspace image's `image_id`.
    ImageId,
    "image_id",
    "A workspace image's image_id (a UUID, dashes optional), as listed by get_available_workspaces."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dashed_and_undashed_in_any_case() {
        let want = "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f";
        assert_eq!(normalize_id("kasm_id", want).unwrap(), want);
        assert_eq!(
            normalize_id("kasm_id", "8F6C1D2E-3B4A-4C5D-9E0F-1A2B3C4D5E6F").unwrap(),
            want
        );
    }

    #[test]
    fn refuses_non_uuids() {
        for bad in [
            "",
            "abc",
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6",
            "8f6c-1d2e3b4a4c5d9e0f1a2b3c4d5e6f",
            "zz6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f",
            "../../etc/passwd",
        ] {
            assert!(normalize_id("kasm_id", bad).is_err(), "{bad}");
        }
    }

    /// The first implementation (collect, split, lowercase): the allocation-light one must
    /// accept and produce exactly the same.
    fn normalize_reference(raw: &str) -> Option<String> {
        let trimmed = raw.trim();
        let hex: String = trimmed.chars().filter(|c| *c != '-').collect();
        let groups: Vec<&str> = trimmed.split('-').collect();
        let dashes_ok =
            !trimmed.contains('-') || groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
        (hex.len() == 32 && dashes_ok && hex.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| hex.to_ascii_lowercase())
    }

    #[test]
    fn same_answers_as_the_reference_implementation() {
        for raw in [
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f",
            "  8F6C1D2E3B4A4C5D9E0F1A2B3C4D5E6F\n",
            "8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f",
            "\u{a0}8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f\t",
            // Unicode blanks at one end only (the ASCII fast path must not skip `trim`).
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f\u{2003}",
            "\u{85}8F6C1D2E-3B4A-4C5D-9E0F-1A2B3C4D5E6F",
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f\u{3000}\u{2028}",
            " 8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f",
            "8f6c1d2e3-b4a-4c5d-9e0f-1a2b3c4d5e6f",
            "8f6c1d2e-3b4a-4c5d-9e0f1-a2b3c4d5e6f",
            "8f6c1d2e--3b4a4c5d-9e0f-1a2b3c4d5e6f",
            "-8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f",
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f-",
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5é6",
            "8f6c1d2e 3b4a4c5d9e0f1a2b3c4d5e6",
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6fa",
            "g f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6",
            "",
            "-",
        ] {
            assert_eq!(
                normalize_id("kasm_id", raw).ok(),
                normalize_reference(raw),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn typed_ids_normalise_when_deserialised_and_refuse_non_uuids_naming_the_parameter() {
        let id: KasmId =
            serde_json::from_value(serde_json::json!("8F6C1D2E-3B4A-4C5D-9E0F-1A2B3C4D5E6F"))
                .unwrap();
        assert_eq!(id.as_str(), "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f");
        assert_eq!(id.to_string(), id.as_str());
        assert!(id.matches("8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f"));
        let err = serde_json::from_value::<UserId>(serde_json::json!("../etc")).unwrap_err();
        assert!(err.to_string().contains("user_id must be a UUID"), "{err}");
        assert!(serde_json::from_value::<ImageId>(serde_json::json!(7)).is_err());
    }

    #[test]
    fn the_schema_pattern_accepts_exactly_what_the_parser_accepts() {
        let schema = schemars::schema_for!(KasmId);
        assert_eq!(
            schema.get("pattern").and_then(|p| p.as_str()),
            Some(UUID_PATTERN)
        );
        // The pattern is checked by hand here (no regex crate): both spellings are UUIDs.
        for good in [
            "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f",
            "8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f",
        ] {
            assert!(KasmId::parse(good).is_ok(), "{good}");
        }
    }
}
