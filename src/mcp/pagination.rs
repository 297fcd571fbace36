//! Cursor pagination for list methods. Items are listed in a deterministic order (sorted by a
//! key such as the tool name); the opaque cursor records the last key of the previous page,
//! so a page boundary stays correct even when items are added or hidden in between.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::mcp::jsonrpc::RpcError;

const CURSOR_PREFIX: &str = "after:";

/// Page size used unless the server is configured otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// One page: the items and the cursor of the next page (None on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Encode the cursor that continues after `key`.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{key}"))
}

/// Decode a cursor back into the last key it saw; -32602 when it is not one of ours.
pub fn decode_cursor(cursor: &str) -> Result<String, RpcError> {
    let invalid = || RpcError::invalid_params(format!("invalid cursor {cursor:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(CURSOR_PREFIX)
        .map(str::to_string)
        .ok_or_else(invalid)
}

/// Read `params.cursor`: absent/null → first page; a string → decoded; anything else → -32602.
pub fn cursor_param(params: &serde_json::Map<String, Value>) -> Result<Option<String>, RpcError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c)) => decode_cursor(c).map(Some),
        Some(_) => Err(RpcError::invalid_params("params.cursor must be a string")),
    }
}

/// Sort `items` by `key` and cut the page that follows `after`.
pub fn paginate<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    after: Option<&str>,
    page_size: usize,
) -> Page<T> {
    items.sort_by_key(|item| key(item));
    let start = match after {
        Some(after) => items.partition_point(|item| key(item).as_str() <= after),
        None => 0,
    };
    let page_size = page_size.max(1);
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    let has_more = rest.len() > page_size;
    let items: Vec<T> = rest.into_iter().take(page_size).collect();
    let next_cursor = if has_more {
        items.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(n: usize) -> Vec<String> {
        (0..n).rev().map(|i| format!("tool_{i:02}")).collect()
    }

    #[test]
    fn walks_all_pages_in_sorted_order() {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = paginate(names(7), |s| s.clone(), after.as_deref(), 3);
            pages += 1;
            seen.extend(page.items);
            match page.next_cursor {
                Some(c) => after = Some(decode_cursor(&c).unwrap()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let mut expected = names(7);
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn exact_fit_has_no_next_cursor() {
        let page = paginate(names(3), |s| s.clone(), None, 3);
        assert_eq!(page.items.len(), 3);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn invalid_cursors_are_invalid_params() {
        for bad in [
            "",
            "!!!",
            "bm90LW91cnM",
            &URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ] {
            let err = decode_cursor(bad).unwrap_err();
            assert_eq!(err.code, -32602, "cursor {bad:?}");
        }
        let p = json!({"cursor": 5});
        assert!(cursor_param(p.as_object().unwrap()).is_err());
        let p = json!({"cursor": null});
        assert_eq!(cursor_param(p.as_object().unwrap()).unwrap(), None);
    }

    #[test]
    fn cursor_survives_removed_items() {
        let cursor = encode_cursor("tool_02");
        let mut items = names(6);
        items.retain(|n| n != "tool_02");
        let after = decode_cursor(&cursor).unwrap();
        let page = paginate(items, |s| s.clone(), Some(&after), 2);
        assert_eq!(
            page.items,
            vec!["tool_03".to_string(), "tool_04".to_string()]
        );
    }
}
