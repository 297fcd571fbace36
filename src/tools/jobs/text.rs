//! Output bytes as result text: UTF-8 as it is (a character cut at the end is dropped),
//! anything else lossily decoded with the exact bytes beside it as base64.

use base64::Engine;

/// (text, base64 when the bytes are not UTF-8).
pub fn text_of(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(e) if e.error_len().is_none() => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            (String::from_utf8_lossy(valid).into_owned(), None)
        }
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_and_binary_gets_base64() {
        assert_eq!(text_of(b"hi"), ("hi".into(), None));
        assert_eq!(
            text_of("aé".as_bytes().get(..2).unwrap()),
            ("a".into(), None)
        );
        assert_eq!(text_of(b"\xff").1.as_deref(), Some("/w=="));
    }
}
