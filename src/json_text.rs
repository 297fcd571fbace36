//! JSON text of a `serde_json::Value`, byte for byte what `serde_json::to_string` (compact)
//! and `serde_json::to_string_pretty` (two-space indent) write, written straight into a
//! `String`.
//!
//! Every tool call's answer is written twice: the structured result pretty-printed into the
//! text content block, then the whole response compactly — the text block, itself JSON, is
//! then escaped again (about one byte in ten needs an escape). serde_json's serializer hands
//! each unescaped run and each escape to its `io::Write` separately (a bounds-checked
//! `write_all` per fragment after a byte-by-byte scan: ≈ 7 % of a `get_session_status`
//! call's instructions); this writer checks eight bytes at a time for anything to escape,
//! copies the runs between escapes whole, and needs no UTF-8 check of its output. `tests` pins both forms to serde_json's own output on every kind of value, every
//! escape and nesting.

use serde_json::{Map, Value};

/// `serde_json::to_string(value)`.
pub fn compact(value: &Value) -> String {
    let mut out = String::with_capacity(1024);
    write_compact(&mut out, value);
    out
}

/// `serde_json::to_string_pretty(value)`.
pub fn pretty(value: &Value) -> String {
    let mut out = String::with_capacity(1024);
    write_pretty(&mut out, value, 0);
    out
}

fn write_compact(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_compact(out, item);
            }
            out.push('}');
        }
    }
}

/// serde_json's `PrettyFormatter`: an empty array or object is `[]` / `{}`, otherwise each
/// element on a line of its own, indented two spaces per level, `": "` after a key.
fn write_pretty(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                indent(out, depth + 1);
                write_pretty(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => write_pretty_object(out, map, depth),
        other => write_compact(out, other),
    }
}

fn write_pretty_object(out: &mut String, map: &Map<String, Value>, depth: usize) {
    out.push('{');
    for (i, (key, item)) in map.iter().enumerate() {
        out.push_str(if i > 0 { ",\n" } else { "\n" });
        indent(out, depth + 1);
        write_str(out, key);
        out.push_str(": ");
        write_pretty(out, item, depth + 1);
    }
    out.push('\n');
    indent(out, depth);
    out.push('}');
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Numbers as serde_json writes them (rare in answers; its integer and float text is kept).
fn write_number(out: &mut String, number: &serde_json::Number) {
    match serde_json::to_string(number) {
        Ok(text) => out.push_str(&text),
        Err(_) => out.push_str("null"),
    }
}

/// What a byte becomes inside a JSON string: 0 = itself, `u` = `\u00XX`, else `\` + that byte
/// (serde_json's table: the short escapes for `\b \t \n \f \r " \\`, `\u00XX` for the other
/// control characters; DEL and non-ASCII as they are).
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Each byte of a word repeated: `0x0101…01 * b`.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether any of the 8 bytes of `word` needs an escape: a control character (< 0x20), `"`
/// or `\`. The usual bit tricks ("has a byte less than n", "has a zero byte"), exact as a
/// yes/no answer.
fn needs_escape(word: u64) -> bool {
    let below = |n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    (below(0x20) | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// `text` as a JSON string. Runs without escapes are copied as they are (8 bytes are checked
/// at a time); the slices are cut at ASCII bytes, so always at character boundaries.
fn write_str(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push('"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_ne_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let byte = bytes[i];
            let escape = ESCAPE[usize::from(byte)];
            if escape != 0 {
                out.push_str(&text[start..i]);
                out.push('\\');
                if escape == b'u' {
                    out.push_str("u00");
                    out.push(char::from(HEX[usize::from(byte >> 4)]));
                    out.push(char::from(HEX[usize::from(byte & 0xf)]));
                } else {
                    out.push(char::from(escape));
                }
                start = i + 1;
            }
            i += 1;
        }
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values() -> Vec<Value> {
        let every_byte: String = (0u8..=0x7f).map(char::from).collect();
        let big = "ab\"c\\d\n".repeat(700);
        let mut values = vec![
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-1),
            json!(18446744073709551615u64),
            json!(-9223372036854775808i64),
            json!(0.1),
            json!(1e300),
            json!(-2.5e-7),
            json!(100.0),
            json!(""),
            json!(every_byte),
            json!("é ✓ \u{2028}\u{2029} \u{7f} 😀 </script>"),
            json!(big),
            json!([]),
            json!({}),
            json!([[]]),
            json!([{}]),
            json!({"a": {}, "b": [], "c": [{}], "d": {"e": []}}),
            json!([1, [2, [3, [4, []]]], {"k": {"k": {"k": null}}}]),
            json!({"\n key \"q\" \u{1}": "v", "": "", "é": "\\"}),
        ];
        // A real answer: a tool result whose text block is the pretty form of its structure.
        let structured = json!({"kasm_id": "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f", "message": null,
            "progress": 40, "session_url": "http://h:1/#/connect/kasm/a/b/c", "tab": "a\tb",
            "image": {"friendly_name": "Terminal", "tags": ["x", "y"]}, "empty": [], "none": {}});
        let text = serde_json::to_string_pretty(&structured).unwrap();
        values.push(
            json!({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text",
            "text": text}], "isError": false, "structuredContent": structured}}),
        );
        values.push(
            json!({"jsonrpc": "2.0", "id": "x\"y", "error": {"code": -32602,
            "message": "bad </script>", "data": {"supported": ["2026-07-28", "2025-11-25"]}}}),
        );
        values
    }

    #[test]
    fn compact_is_serde_jsons_to_string() {
        for value in values() {
            assert_eq!(compact(&value), serde_json::to_string(&value).unwrap());
        }
    }

    #[test]
    fn pretty_is_serde_jsons_to_string_pretty() {
        for value in values() {
            assert_eq!(
                pretty(&value),
                serde_json::to_string_pretty(&value).unwrap()
            );
        }
    }

    #[test]
    fn escapes_at_every_position_of_a_word_and_multibyte_characters_around_them() {
        for len in 0..40 {
            for at in 0..len {
                for special in [
                    "\"", "\\", "\n", "\u{1f}", "\u{7f}", "é", "✓", "😀", "\u{0}",
                ] {
                    let mut text: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"[..len].into();
                    text.replace_range(at..at + 1, special);
                    let value = json!({ text.clone(): [text] });
                    assert_eq!(
                        compact(&value),
                        serde_json::to_string(&value).unwrap(),
                        "{text:?}"
                    );
                    assert_eq!(
                        pretty(&value),
                        serde_json::to_string_pretty(&value).unwrap(),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_control_character_and_escape_is_written_as_serde_json_writes_it() {
        for byte in 0u8..=0x7f {
            let value = json!(format!("a{}b", char::from(byte)));
            assert_eq!(
                compact(&value),
                serde_json::to_string(&value).unwrap(),
                "{byte:#x}"
            );
        }
    }
}
