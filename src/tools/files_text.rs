//! The text content of the file tools' results, written for a model to read: a file's
//! content as it is (not inside an escaped JSON string), a directory as one line per entry,
//! a write as one sentence. `structuredContent` keeps the machine form.

use crate::relay::frame::ListEntry;

/// `read_kasm_file`: a line about the file, then its content (text, or the base64 asked for).
pub fn read(path: &str, size: usize, sha256: &str, encoding: &str, content: &str) -> Vec<String> {
    let about = if encoding == "base64" {
        format!("{path}: {size} bytes, sha256 {sha256}; the next block is the content as base64")
    } else if size == 0 {
        format!("{path}: empty file (0 bytes)")
    } else {
        format!(
            "{path}: {size} bytes of UTF-8 text, sha256 {sha256}; the next block is the content"
        )
    };
    if size == 0 {
        return vec![about];
    }
    vec![about, content.to_string()]
}

/// `write_kasm_file`: what was written and whether the session confirmed it.
pub fn written(path: &str, size: usize, sha256: &str, verified: bool) -> Vec<String> {
    let check = if verified {
        "the session computed the same sha256 after the write"
    } else {
        "the session has no sha256sum, so the write was not re-checked there"
    };
    vec![format!(
        "Wrote {size} bytes to {path} (sha256 {sha256}; {check})."
    )]
}

/// `list_kasm_files`: one line per entry (`name/` for directories, `name -> ` for symlinks,
/// with sizes), sorted as given.
pub fn listing(path: &str, entries: &[ListEntry], truncated: bool) -> Vec<String> {
    let mut text = match (entries.len(), truncated) {
        (0, _) => format!("{path}: empty directory"),
        (1, false) => format!("{path}: 1 entry"),
        (n, false) => format!("{path}: {n} entries"),
        (n, true) => format!(
            "{path}: the first {n} entries (there are more: pass a larger max_entries, or list with execute_kasm_command and filter)"
        ),
    };
    for entry in entries {
        let size = entry.size.map_or(String::new(), |s| format!("  {s} bytes"));
        let line = match entry.kind.as_str() {
            "directory" => format!("{}/", entry.name),
            "file" => format!("{}{size}", entry.name),
            "symlink" => format!("{}  (symlink)", entry.name),
            other => format!("{}  ({other}){size}", entry.name),
        };
        text.push('\n');
        text.push_str(&line);
    }
    vec![text]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: &str, size: Option<u64>) -> ListEntry {
        ListEntry {
            name: name.into(),
            kind: kind.into(),
            size,
        }
    }

    #[test]
    fn a_file_reads_as_its_content() {
        assert_eq!(
            read("/home/kasm-user/a.txt", 6, "ab12", "utf-8", "hello\n"),
            [
                "/home/kasm-user/a.txt: 6 bytes of UTF-8 text, sha256 ab12; the next block is the content",
                "hello\n"
            ]
        );
        assert_eq!(
            read("/x.bin", 2, "cd34", "base64", "/wA="),
            [
                "/x.bin: 2 bytes, sha256 cd34; the next block is the content as base64",
                "/wA="
            ]
        );
        assert_eq!(
            read("/e", 0, "e3b0", "utf-8", ""),
            ["/e: empty file (0 bytes)"]
        );
    }

    #[test]
    fn a_write_is_one_sentence() {
        assert_eq!(
            written("/a", 3, "ff", true),
            [
                "Wrote 3 bytes to /a (sha256 ff; the session computed the same sha256 after the write)."
            ]
        );
        assert!(written("/a", 3, "ff", false)[0].contains("not re-checked"));
    }

    #[test]
    fn a_directory_is_one_line_per_entry() {
        let entries = [
            entry(".bashrc", "file", Some(220)),
            entry("Desktop", "directory", Some(4096)),
            entry("link", "symlink", None),
            entry("pipe", "other", Some(0)),
        ];
        assert_eq!(
            listing("/home/kasm-user", &entries, false),
            [
                "/home/kasm-user: 4 entries\n.bashrc  220 bytes\nDesktop/\nlink  (symlink)\npipe  (other)  0 bytes"
            ]
        );
        assert!(
            listing("/d", &entries[..2], true)[0]
                .starts_with("/d: the first 2 entries (there are more")
        );
        assert_eq!(
            listing("/d", &entries[..1], false),
            ["/d: 1 entry\n.bashrc  220 bytes"]
        );
        assert_eq!(listing("/d", &[], false), ["/d: empty directory"]);
    }
}
