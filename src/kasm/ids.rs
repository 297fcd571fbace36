//! Kasm ids: UUIDs that Kasm prints as 32 hex digits without dashes and accepts either way.

use super::KasmError;

/// Normalise a UUID given with or without dashes (any case) to Kasm's 32-lowercase-hex form.
///
/// Anything else is refused before it reaches Kasm, where a non-UUID makes PostgreSQL fail.
pub fn normalize_id(what: &str, raw: &str) -> Result<String, KasmError> {
    let trimmed = raw.trim();
    let hex: String = trimmed.chars().filter(|c| *c != '-').collect();
    let dashes_ok = !trimmed.contains('-') || is_dashed_uuid(trimmed);
    if hex.len() == 32 && dashes_ok && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(KasmError::InvalidArgument(format!(
            "{what} must be a UUID (32 hex digits, dashes optional), got {raw:?}"
        )))
    }
}

fn is_dashed_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
}

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
}
