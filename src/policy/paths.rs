//! Path policy for file tools: a pure check that a path inside a session is absolute,
//! normalised, free of `..`, NUL and other control characters, and inside one of the allowed
//! roots. Control characters are refused because shells and tools in the container treat
//! them specially (`$(…)` strips trailing newlines, a newline splits the roots list), so
//! a path containing one could end up naming another file.
//!
//! This is the server-side half; the relay wrapper re-checks the resolved path with
//! `realpath` inside the container, where symlinks are visible.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty: give an absolute path such as /home/kasm-user/notes.txt")]
    Empty,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error(
        "the path {path:?} contains the control character {character} at byte {at}; paths with control characters (newline, tab, escape, …) are refused because tools in the session would not see them as written: rename the file with execute_kasm_command first"
    )]
    ControlCharacter {
        path: String,
        /// `U+000A` and so on.
        character: String,
        at: usize,
    },
    #[error("the path {0:?} is relative: give an absolute path such as /home/kasm-user/notes.txt")]
    Relative(String),
    #[error("the path {0:?} contains a `..` component, which is not allowed")]
    ParentComponent(String),
    #[error(
        "the path {path:?} is outside the allowed roots ({roots}); allowed roots are set by ALLOWED_ROOTS"
    )]
    OutsideRoots { path: String, roots: String },
    #[error("the path {0:?} is longer than 4096 bytes")]
    TooLong(String),
}

/// Longest path accepted (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// Normalise an absolute path: collapse repeated `/`, drop `.` components and a trailing `/`.
/// Refuses relative paths, `..` components, NUL bytes and other control characters
/// (`char::is_control`: C0, DEL and C1).
pub fn normalize_absolute(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if raw.contains('\0') {
        return Err(PathError::Nul);
    }
    if let Some((at, c)) = raw.char_indices().find(|(_, c)| c.is_control()) {
        return Err(PathError::ControlCharacter {
            path: raw.chars().take(256).collect(),
            character: format!("U+{:04X}", u32::from(c)),
            at,
        });
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong(raw.chars().take(64).collect()));
    }
    if !raw.starts_with('/') {
        return Err(PathError::Relative(raw.to_string()));
    }
    let mut parts = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(PathError::ParentComponent(raw.to_string())),
            name => parts.push(name),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Whether normalised `path` equals `root` or lies below it (component-wise, so
/// `/home/kasm-username` is not inside `/home/kasm-user`).
pub fn is_within(path: &str, root: &str) -> bool {
    if root == "/" {
        return true;
    }
    path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Validate a path a file tool was given: normalised and inside one of `allowed_roots`.
/// Returns the normalised path.
pub fn check_path(raw: &str, allowed_roots: &[String]) -> Result<String, PathError> {
    let path = normalize_absolute(raw)?;
    let inside = allowed_roots.iter().any(|root| {
        normalize_absolute(root)
            .map(|root| is_within(&path, &root))
            .unwrap_or(false)
    });
    if inside {
        Ok(path)
    } else {
        Err(PathError::OutsideRoots {
            path,
            roots: allowed_roots.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Vec<String> {
        vec!["/home/kasm-user".into(), "/tmp/work/".into()]
    }

    #[test]
    fn accepts_and_normalises_paths_inside_roots() {
        let table = [
            ("/home/kasm-user", "/home/kasm-user"),
            ("/home/kasm-user/", "/home/kasm-user"),
            ("/home/kasm-user/a.txt", "/home/kasm-user/a.txt"),
            ("//home//kasm-user/./a/./b", "/home/kasm-user/a/b"),
            ("/tmp/work/x y/'q'\"/é.txt", "/tmp/work/x y/'q'\"/é.txt"),
            ("/home/kasm-user/...", "/home/kasm-user/..."),
            ("/home/kasm-user/..hidden", "/home/kasm-user/..hidden"),
        ];
        for (raw, want) in table {
            assert_eq!(check_path(raw, &roots()).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn refuses_bad_paths_with_the_reason() {
        let r = roots();
        assert_eq!(check_path("", &r), Err(PathError::Empty));
        assert_eq!(check_path("/home/kasm-user/a\0b", &r), Err(PathError::Nul));
        assert!(matches!(
            check_path("home/kasm-user/a", &r),
            Err(PathError::Relative(_))
        ));
        assert!(matches!(
            check_path("/home/kasm-user/../../etc/passwd", &r),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(
            check_path("/home/kasm-user/a/..", &r),
            Err(PathError::ParentComponent(_))
        ));
        for outside in [
            "/etc/passwd",
            "/home/kasm-username/x",
            "/",
            "/home",
            "/tmp/workx",
        ] {
            assert!(
                matches!(check_path(outside, &r), Err(PathError::OutsideRoots { .. })),
                "{outside}"
            );
        }
        for (bad, at, character) in [
            ("/home/kasm-user/b\n", 17, "U+000A"),
            ("/home/kasm-user/d\n/f", 17, "U+000A"),
            ("/home/kasm-user/a\tb", 17, "U+0009"),
            ("/home/kasm-user/\u{1b}[31m", 16, "U+001B"),
            ("/home/kasm-user/x\u{7f}", 17, "U+007F"),
            ("/home/kasm-user/é\u{85}", 18, "U+0085"),
            ("/home/kasm-user/cr\r", 18, "U+000D"),
        ] {
            match check_path(bad, &r) {
                Err(PathError::ControlCharacter {
                    at: got_at,
                    character: got,
                    ..
                }) => assert_eq!((got_at, got.as_str()), (at, character), "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let long = format!("/home/kasm-user/{}", "a".repeat(5000));
        assert!(matches!(check_path(&long, &r), Err(PathError::TooLong(_))));
    }

    #[test]
    fn root_slash_allows_everything_absolute() {
        let r = vec!["/".to_string()];
        assert_eq!(check_path("/etc/hosts", &r).as_deref(), Ok("/etc/hosts"));
        assert_eq!(check_path("/", &r).as_deref(), Ok("/"));
    }
}
