//! The bytes handed to tree-sitter-bash, made safe for its external scanner (C).
//!
//! The scanner (`scanner.c`, `BRACE_START`, tree-sitter-bash 0.25) looks for `{1..9}` with
//! `isdigit(lexer->lookahead)` on the character after `{` and its digits, and after `{N..` and
//! its digits. `isdigit` is a table lookup only defined for -1..=255; a code point above that
//! reads past glibc's table, and far above it (U+E0100, a variation selector, 918,784 entries
//! out) it reads unmapped memory: SIGSEGV, the whole server gone, from the two characters `{󠄀`.
//! Lower code points read garbage instead, so the scanner may take them for digits.
//!
//! So the parser gets a copy of the text in which every non-ASCII character in one of those
//! two places is replaced by as many `x` bytes as it has: the scanner then never sees a code
//! point outside ASCII where it calls `isdigit`, and byte offsets stay those of the original
//! text, from which every word is read (the policy judges the real characters). An `x` is what
//! the scanner would have concluded anyway (not a digit, not `.`, not `}`: no brace range).

use std::borrow::Cow;

/// What replaces each byte of a character the scanner must not see.
const STAND_IN: u8 = b'x';

/// `text` as the parser may read it; borrowed when nothing needed replacing.
pub fn scanner_safe(text: &str) -> Cow<'_, [u8]> {
    let mut bytes = Cow::Borrowed(text.as_bytes());
    let after_digits = |from: usize| {
        let digits = text.get(from..).map_or(0, |rest| {
            rest.bytes().take_while(u8::is_ascii_digit).count()
        });
        from.saturating_add(digits)
    };
    for (open, _) in text.match_indices('{') {
        // `{` is one byte, so `open + 1` is a character boundary (or the end).
        let mut at = after_digits(open.saturating_add(1));
        if text.get(at..).is_some_and(|rest| rest.starts_with("..")) {
            at = after_digits(at.saturating_add(2));
        }
        let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) else {
            continue;
        };
        if !c.is_ascii()
            && let Some(span) = bytes.to_mut().get_mut(at..at.saturating_add(c.len_utf8()))
        {
            span.fill(STAND_IN);
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_ascii_characters_where_the_scanner_calls_isdigit_are_replaced() {
        let table: &[(&str, &str)] = &[
            ("{\u{E0100}", "{xxxx"),
            ("{12\u{E0100}}", "{12xxxx}"),
            ("{1..\u{E0100}}", "{1..xxxx}"),
            ("{..9é}", "{..9xx}"),
            ("{{é", "{{xx"),
            ("echo {a,é} é${é}", "echo {a,é} é${xx}"),
            ("{1.é}", "{1.é}"),
            ("é { é", "é { é"),
            ("echo ok", "echo ok"),
            ("", ""),
        ];
        for (text, want) in table {
            let got = scanner_safe(text);
            assert_eq!(got.len(), text.len(), "{text}: offsets must not move");
            assert_eq!(std::str::from_utf8(&got), Ok(*want), "{text}");
        }
        assert!(matches!(scanner_safe("echo é"), Cow::Borrowed(_)));
    }
}
