//! Shell text → raw simple commands, with tree-sitter-bash. This file knows the syntax tree;
//! it does not know wrappers or rules.
//!
//! The tree is walked with an explicit stack (no recursion), so nesting depth costs heap, not
//! stack; nesting is bounded anyway ([`MAX_NESTING`]) and checked before parsing with a cheap
//! bracket count, so a hostile text cannot make the parser itself dig deep. The parser reads a
//! copy its C scanner cannot crash on ([`super::scanner_input`]); words are read from the text
//! itself. Each word is reduced to the text the shell would see after quote removal when it
//! contains no expansion.

use std::borrow::Cow;
use std::rc::Rc;

use std::time::Instant;

use tree_sitter::{Node, ParseOptions, ParseState, Parser};

use super::model::{Redirect, Word};
use super::scanner_input::scanner_safe;

/// Longest text parsed; longer texts are unresolved (the tool itself takes at most 100 KiB).
pub const MAX_SCRIPT_BYTES: usize = 2 * 1024 * 1024;
/// Deepest bracket / syntax-tree nesting followed.
pub const MAX_NESTING: usize = 256;
/// Most simple commands recorded from one text (all levels of `sh -c` included).
pub const MAX_COMMANDS: usize = 10_000;
/// Most here-documents (`<<`) in one text: tree-sitter-bash's scanner slows down
/// quadratically with pending here-documents (3,000 take seconds).
pub const MAX_HEREDOCS: usize = 64;
/// Most `|` characters in one text: tree-sitter-bash parses long pipelines in quadratic
/// time (4,000 elements ending in a command with arguments take seconds).
pub const MAX_PIPE_CHARS: usize = 1_000;
/// Longest the parser may work on one text (checked every 100 parser operations, so it can
/// be overshot); beyond it the text is unresolved.
pub const PARSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// A simple command as written: every word, `argv[0]` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    pub words: Vec<Word>,
    /// (pipeline number, position in it) when the command is part of a pipeline.
    pub pipe: Option<(usize, usize)>,
}

/// What one parse found.
#[derive(Debug, Default)]
pub struct Parsed {
    pub commands: Vec<RawCommand>,
    pub redirects: Vec<Redirect>,
    pub unresolved: Vec<String>,
    pub recursive_functions: Vec<String>,
}

impl Parsed {
    fn unresolved(mut self, why: impl Into<String>) -> Parsed {
        self.unresolved.push(why.into());
        self
    }
}

/// Where a node sits: how deep, in which pipeline element, in which function body.
#[derive(Clone)]
struct Place {
    depth: usize,
    pipe: Option<(usize, usize)>,
    function: Option<Rc<str>>,
}

/// Deepest nesting of `(`, `{`, `[` and backquotes, ignoring quotes (an over-estimate).
fn bracket_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_backquote) = (0usize, 0usize, false);
    for b in text.bytes() {
        match b {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            b'`' => {
                in_backquote = !in_backquote;
                if in_backquote {
                    depth += 1;
                } else {
                    depth = depth.saturating_sub(1);
                }
            }
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    deepest
}

/// Parse `text` and collect its simple commands, output redirections and anything that
/// cannot be judged statically. `pipe_base` numbers this text's pipelines after earlier ones.
pub fn parse_script(text: &str, pipe_base: usize, budget: usize) -> Parsed {
    let mut parsed = Parsed::default();
    if text.len() > MAX_SCRIPT_BYTES {
        return parsed.unresolved(format!(
            "the command text is {} bytes, more than the {MAX_SCRIPT_BYTES} bytes the policy parses",
            text.len()
        ));
    }
    if bracket_depth(text) > MAX_NESTING {
        return parsed.unresolved(format!(
            "the command nests brackets or substitutions more than {MAX_NESTING} levels deep"
        ));
    }
    if text.bytes().filter(|b| *b == b'|').count() > MAX_PIPE_CHARS {
        return parsed.unresolved(format!(
            "the command holds more than {MAX_PIPE_CHARS} pipes (|)"
        ));
    }
    if text.matches("<<").count() > MAX_HEREDOCS {
        return parsed.unresolved(format!(
            "the command holds more than {MAX_HEREDOCS} here-documents (<<)"
        ));
    }
    let mut parser = Parser::new();
    if parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .is_err()
    {
        return parsed.unresolved("the shell parser could not be loaded");
    }
    // The parser reads a copy the C scanner cannot crash on; words are read from `text`.
    let safe = scanner_safe(text);
    if matches!(safe, Cow::Owned(_)) && text.contains("<<") {
        // Two different here-document delimiters could read alike in the copy.
        parsed.unresolved.push(
            "the command holds a here-document (<<) and a non-ASCII character right after `{`, which the shell parser cannot read as written".into(),
        );
    }
    let bytes: &[u8] = &safe;
    let started = Instant::now();
    // Returning true stops the parse: a bound on CPU for any input.
    let mut past_deadline = |_: &ParseState| started.elapsed() > PARSE_DEADLINE;
    let tree = parser.parse_with_options(
        &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
        None,
        Some(ParseOptions::new().progress_callback(&mut past_deadline)),
    );
    let Some(tree) = tree else {
        return parsed.unresolved(format!(
            "the shell parser did not finish within {PARSE_DEADLINE:?}"
        ));
    };
    walk(tree.root_node(), text.as_bytes(), pipe_base, budget, parsed)
}

fn walk(root: Node<'_>, src: &[u8], pipe_base: usize, budget: usize, mut out: Parsed) -> Parsed {
    let mut next_pipe = pipe_base;
    let mut reported_error = false;
    let mut stack = vec![(
        root,
        Place {
            depth: 0,
            pipe: None,
            function: None,
        },
    )];
    while let Some((node, place)) = stack.pop() {
        if place.depth > MAX_NESTING * 4 {
            out.unresolved.push(format!(
                "the command nests more than {MAX_NESTING} levels deep"
            ));
            break;
        }
        if (node.is_error() || node.is_missing()) && !reported_error {
            reported_error = true;
            out.unresolved.push(format!(
                "the command text is not valid shell syntax (near byte {})",
                node.start_byte()
            ));
        }
        let child_place = Place {
            depth: place.depth + 1,
            ..place.clone()
        };
        match node.kind() {
            "command" => {
                if out.commands.len() >= budget {
                    out.unresolved.push(format!(
                        "the command text holds more than {MAX_COMMANDS} simple commands"
                    ));
                    break;
                }
                let words = command_words(node, src);
                if let (Some(Some(name)), Some(function)) = (words.first(), &place.function)
                    && name.as_str() == &**function
                    && !out.recursive_functions.iter().any(|f| f == name)
                {
                    out.recursive_functions.push(name.clone());
                }
                if !words.is_empty() {
                    out.commands.push(RawCommand {
                        words,
                        pipe: place.pipe,
                    });
                }
            }
            "file_redirect" => {
                if let Some(redirect) = output_redirect(node, src) {
                    out.redirects.push(redirect);
                }
            }
            "function_definition" => {
                let name = node
                    .child_by_field_name("name")
                    .and_then(|n| word_text(n, src));
                let mut cursor = node.walk();
                let children: Vec<_> = node.named_children(&mut cursor).collect();
                for child in children.into_iter().rev() {
                    stack.push((
                        child,
                        Place {
                            function: name.as_deref().map(Rc::from),
                            ..child_place.clone()
                        },
                    ));
                }
                continue;
            }
            "pipeline" => {
                let id = next_pipe;
                next_pipe += 1;
                let mut cursor = node.walk();
                let children: Vec<_> = node.named_children(&mut cursor).enumerate().collect();
                for (index, child) in children.into_iter().rev() {
                    stack.push((
                        child,
                        Place {
                            pipe: Some((id, index)),
                            ..child_place.clone()
                        },
                    ));
                }
                continue;
            }
            _ => {}
        }
        let mut cursor = node.walk();
        let children: Vec<_> = node.children(&mut cursor).collect();
        for child in children.into_iter().rev() {
            stack.push((child, child_place.clone()));
        }
    }
    out
}

/// `argv` of a `command` node: the name, then every argument (assignments skipped).
///
/// Word nodes that touch (no blank between them) are one shell word: the grammar sometimes
/// splits a word the shell keeps whole (`r''\m` comes out as `r''` and `\m`), and judging
/// the pieces would miss `rm`.
fn command_words(node: Node<'_>, src: &[u8]) -> Vec<Word> {
    let mut words: Vec<Word> = Vec::new();
    let mut last_end = None;
    for i in 0..node.child_count() {
        let (Ok(index), Some(child)) = (u32::try_from(i), node.child(i)) else {
            continue;
        };
        let word = match node.field_name_for_child(index) {
            Some("name") => word_text(child.named_child(0).unwrap_or(child), src),
            Some("argument") => word_text(child, src),
            _ => {
                last_end = None;
                continue;
            }
        };
        match words.last_mut() {
            Some(previous) if last_end == Some(child.start_byte()) => {
                *previous = previous.take().zip(word).map(|(a, b)| a + &b);
            }
            _ => words.push(word),
        }
        last_end = Some(child.end_byte());
    }
    words
}

/// An output redirection (anything writing: `>`, `>>`, `&>`, `&>>`, `>|`, `<>`), not a
/// descriptor duplication such as `2>&1` or `>&-`.
fn output_redirect(node: Node<'_>, src: &[u8]) -> Option<Redirect> {
    let mut operator = String::new();
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if !child.is_named() {
            operator.push_str(child.kind());
        }
    }
    if !(operator.contains('>') || operator == "<>") {
        return None;
    }
    let destination = node.child_by_field_name("destination")?;
    let target = word_text(destination, src);
    let dup = operator.ends_with('&') || operator == ">&" || operator == "<&";
    if dup
        && target
            .as_deref()
            .is_some_and(|t| t == "-" || t.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(Redirect { target })
}

fn text<'a>(node: Node<'_>, src: &'a [u8]) -> &'a str {
    std::str::from_utf8(src.get(node.byte_range()).unwrap_or_default()).unwrap_or_default()
}

/// The static text of a word node, or `None` when it contains an expansion.
pub fn word_text(node: Node<'_>, src: &[u8]) -> Word {
    match node.kind() {
        "concatenation" => {
            let mut out = String::new();
            let mut cursor = node.walk();
            for part in node.children(&mut cursor) {
                out.push_str(&leaf_text(part, src)?);
            }
            Some(out)
        }
        _ => leaf_text(node, src),
    }
}

fn leaf_text(node: Node<'_>, src: &[u8]) -> Word {
    let raw = text(node, src);
    match node.kind() {
        "word" | "number" => Some(unescape_bare(raw)),
        "raw_string" => Some(strip(raw, "'", "'").to_string()),
        "ansi_c_string" => Some(unescape_ansi_c(strip(raw, "$'", "'"))),
        "string" => {
            let mut cursor = node.walk();
            let plain = node
                .named_children(&mut cursor)
                .all(|c| c.kind() == "string_content");
            plain.then(|| unescape_double(strip(raw, "\"", "\"")))
        }
        _ => None,
    }
}

fn strip<'a>(raw: &'a str, open: &str, close: &str) -> &'a str {
    let inner = raw.strip_prefix(open).unwrap_or(raw);
    inner.strip_suffix(close).unwrap_or(inner)
}

/// Quote removal outside quotes: `\x` is `x`, backslash-newline disappears.
pub fn unescape_bare(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('\n') | None => {}
                Some(next) => out.push(next),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// Inside double quotes, a backslash escapes only `$`, `` ` ``, `"`, `\` and newline.
fn unescape_double(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('$' | '`' | '"' | '\\') => {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                    continue;
                }
                Some('\n') => {
                    chars.next();
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// `$'…'`: the common C escapes; anything else keeps its character.
fn unescape_ansi_c(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('e' | 'E') => out.push('\u{1b}'),
            Some('x') => {
                let hex: String = chars
                    .clone()
                    .take(2)
                    .take_while(char::is_ascii_hexdigit)
                    .collect();
                for _ in 0..hex.len() {
                    chars.next();
                }
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push_str("\\x"),
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<Vec<Word>> {
        parse_script(text, 0, MAX_COMMANDS)
            .commands
            .into_iter()
            .map(|c| c.words)
            .collect()
    }

    fn w(words: &[&str]) -> Vec<Word> {
        words.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn quoting_is_removed_and_expansions_are_unknown() {
        assert_eq!(names("r''m -rf /"), vec![w(&["rm", "-rf", "/"])]);
        assert_eq!(names("\"rm\" -rf /"), vec![w(&["rm", "-rf", "/"])]);
        assert_eq!(names("\\rm -rf /"), vec![w(&["rm", "-rf", "/"])]);
        assert_eq!(names("r''\\m -rf /"), vec![w(&["rm", "-rf", "/"])]);
        assert_eq!(names("\"r\"\\m x\\ y"), vec![w(&["rm", "x y"])]);
        assert_eq!(names("$'r\\x6d' x"), vec![w(&["rm", "x"])]);
        assert_eq!(
            names("echo \"a\\\"b\" 'c d'"),
            vec![w(&["echo", "a\"b", "c d"])]
        );
        let dynamic = names("$a -rf /");
        assert_eq!(
            dynamic,
            vec![vec![None, Some("-rf".into()), Some("/".into())]]
        );
        let sub = names("$(echo rm) -rf /");
        assert_eq!(sub.len(), 2, "{sub:?}");
        assert!(sub.contains(&w(&["echo", "rm"])));
    }

    #[test]
    fn redirections_pipelines_and_functions_are_found() {
        let p = parse_script("echo x > /etc/passwd 2>&1; cat a >>b &>/dev/null", 0, 100);
        let targets: Vec<Word> = p.redirects.into_iter().map(|r| r.target).collect();
        assert_eq!(targets, w(&["/etc/passwd", "b", "/dev/null"]));
        let p = parse_script("curl -s u | bash", 7, 100);
        let pipes: Vec<_> = p.commands.iter().map(|c| c.pipe).collect();
        assert!(pipes.contains(&Some((7, 0))) && pipes.contains(&Some((7, 1))));
        let p = parse_script(":(){ :|:& };:", 0, 100);
        assert_eq!(p.recursive_functions, vec![":".to_string()]);
        assert!(
            parse_script("f(){ g; }; f", 0, 100)
                .recursive_functions
                .is_empty()
        );
    }

    #[test]
    fn parse_errors_and_depth_are_unresolved() {
        assert!(!parse_script("if (( ; then", 0, 100).unresolved.is_empty());
        let deep = format!("{}echo{}", "$(".repeat(300), ")".repeat(300));
        assert!(!parse_script(&deep, 0, 100).unresolved.is_empty());
        assert!(parse_script("echo ok", 0, 100).unresolved.is_empty());
        let pipes = format!("{}rm -rf /", "a |& ".repeat(MAX_PIPE_CHARS + 1));
        assert!(!parse_script(&pipes, 0, 100_000).unresolved.is_empty());
        let heredocs = "cat <<EOF\nx\nEOF\n".repeat(MAX_HEREDOCS + 1);
        assert!(!parse_script(&heredocs, 0, 100).unresolved.is_empty());
    }
}
