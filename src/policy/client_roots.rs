//! The client's roots (MCP `roots/list`) as a second bound for file tools: the roots a file
//! tool may use are those places that lie inside BOTH a server root (`policy.allowed_roots`)
//! and a root the client declared. The intersection is what the path is checked against,
//! lexically here and again with `realpath` in the container (it becomes `KMCP_ROOTS`).

use super::paths::{is_within, normalize_absolute};

/// The absolute path of a `file://` root URI (`file:///home/u/p`, `file://localhost/home/u`),
/// percent-decoded and normalised. Other schemes and malformed URIs give `None`: such a root
/// allows nothing.
pub fn root_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let decoded = percent_decode(rest)?;
    normalize_absolute(&decoded).ok()
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The roots a file tool may use when the client declared `client` roots (URIs) and the
/// server allows `server` roots: for each pair, the deeper one when one contains the other.
/// Empty when they do not overlap (every path is refused).
pub fn effective_roots(server: &[String], client: &[String]) -> Vec<String> {
    let server: Vec<String> = server
        .iter()
        .filter_map(|r| normalize_absolute(r).ok())
        .collect();
    let mut roots: Vec<String> = Vec::new();
    for c in client.iter().filter_map(|uri| root_path(uri)) {
        for s in &server {
            let deeper = if is_within(&c, s) {
                Some(c.clone())
            } else if is_within(s, &c) {
                Some(s.clone())
            } else {
                None
            };
            if let Some(root) = deeper
                && !roots.contains(&root)
            {
                roots.push(root);
            }
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_uris() {
        // (uri, path)
        let table = [
            (
                "file:///home/kasm-user/project",
                Some("/home/kasm-user/project"),
            ),
            ("file://localhost/home/u/", Some("/home/u")),
            ("file:///home/u/my%20dir", Some("/home/u/my dir")),
            ("file:///home/u/../etc", None),
            ("file:///bad%zz", None),
            ("https://example.com/x", None),
            ("file://host/x", None),
            ("/home/u", None),
        ];
        for (uri, path) in table {
            assert_eq!(root_path(uri).as_deref(), path, "{uri}");
        }
    }

    #[test]
    fn both_bounds_apply() {
        let server = vec!["/home/kasm-user".to_string(), "/tmp/work".to_string()];
        // (client roots, effective roots)
        let table: [(&[&str], &[&str]); 6] = [
            (
                &["file:///home/kasm-user/project"],
                &["/home/kasm-user/project"],
            ),
            (&["file:///home"], &["/home/kasm-user"]),
            (&["file:///"], &["/home/kasm-user", "/tmp/work"]),
            (&["file:///etc"], &[]),
            (&["file:///home/kasm-username"], &[]),
            (
                &["https://x/home/kasm-user", "file:///tmp/work/a"],
                &["/tmp/work/a"],
            ),
        ];
        for (client, want) in table {
            let client: Vec<String> = client.iter().map(|s| s.to_string()).collect();
            assert_eq!(effective_roots(&server, &client), want, "{client:?}");
        }
    }
}
