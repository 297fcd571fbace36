//! Key input as types: a [`KeyCombo`] list in xdotool key syntax (`ctrl+l`, `Return`,
//! `ctrl+shift+t F5`) and [`TypedText`] for `type`. Both are checked here, at the edge, so the
//! script only ever receives names made of letters, digits and underscores.

use crate::tools::support::ToolError;

/// Most key combinations in one `key`/`hold_key` action.
pub const MAX_COMBOS: usize = 16;
/// Longest key name (`XF86AudioRaiseVolume` is 20).
const MAX_NAME: usize = 40;
/// Most characters one `type` action types.
pub const MAX_TYPED_CHARS: usize = 10_000;

/// Key combinations: each is key names joined by `+` (X keysym names such as `Return`,
/// `ctrl`, `shift`, `a`, `F5`, `KP_Enter`, `slash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCombos(Vec<String>);

impl KeyCombos {
    /// Parse space-separated combinations.
    pub fn parse(text: &str) -> Result<Self, ToolError> {
        let combos: Vec<&str> = text.split_whitespace().collect();
        if combos.is_empty() {
            return Err(ToolError::new(
                "text must name the key(s) in xdotool syntax, e.g. \"Return\", \"ctrl+l\" or \"ctrl+shift+t\"",
            ));
        }
        if combos.len() > MAX_COMBOS {
            return Err(ToolError::new(format!(
                "at most {MAX_COMBOS} key combinations per action"
            )));
        }
        for combo in &combos {
            for name in combo.split('+') {
                let ok = !name.is_empty()
                    && name.len() <= MAX_NAME
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(ToolError::new(format!(
                        "{combo:?} is not xdotool key syntax: join X key names (letters, digits, underscores) with +, e.g. ctrl+l, alt+F4, Return, KP_Enter; punctuation has names such as slash, period, minus; to enter text use action \"type\""
                    )));
                }
            }
        }
        Ok(KeyCombos(combos.into_iter().map(str::to_string).collect()))
    }

    /// The combinations, space-separated (what the script splits into xdotool arguments).
    pub fn joined(&self) -> String {
        self.0.join(" ")
    }
}

/// Text for `type`: 1 to [`MAX_TYPED_CHARS`] characters without NUL. Never logged: only its
/// length and keyed digest reach the audit log.
#[derive(Clone, PartialEq, Eq)]
pub struct TypedText(String);

impl std::fmt::Debug for TypedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TypedText({} chars)", self.0.chars().count())
    }
}

impl TypedText {
    pub fn parse(text: String) -> Result<Self, ToolError> {
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_TYPED_CHARS || text.contains('\0') {
            return Err(ToolError::new(format!(
                "text to type must be 1 to {MAX_TYPED_CHARS} characters without NUL (got {chars}); split longer text over several actions"
            )));
        }
        Ok(TypedText(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax() {
        assert_eq!(
            KeyCombos::parse(" ctrl+l  Return ").unwrap().joined(),
            "ctrl+l Return"
        );
        assert!(KeyCombos::parse("ctrl+shift+t KP_Enter F5 XF86AudioMute").is_ok());
        for bad in [
            "", "ctrl+", "+a", "a;b", "$(id)", "ctrl+-", "é", "`x`", "a'b",
        ] {
            assert!(KeyCombos::parse(bad).is_err(), "{bad:?}");
        }
        let many = vec!["a"; MAX_COMBOS + 1].join(" ");
        assert!(KeyCombos::parse(&many).is_err());
    }

    #[test]
    fn typed_text_is_bounded_and_hidden_from_debug() {
        let t = TypedText::parse("hunter2 é 🦀".into()).unwrap();
        assert_eq!(format!("{t:?}"), "TypedText(11 chars)");
        assert!(TypedText::parse(String::new()).is_err());
        assert!(TypedText::parse("a\0b".into()).is_err());
        assert!(TypedText::parse("x".repeat(MAX_TYPED_CHARS + 1)).is_err());
    }
}
