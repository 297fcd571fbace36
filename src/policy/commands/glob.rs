//! Shell-style glob patterns for rule words: `*` (any run of characters except `/`), `**`
//! (any run, `/` included), `?` (one character) and `[…]` classes (`[!…]` negates, ranges
//! `a-z`). Matching is a dynamic-programming pass: no recursion, no exponential backtracking.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star {
        cross_slash: bool,
    },
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compile `source`. Errors name what is wrong (an unterminated `[`).
    pub fn new(source: &str) -> Result<Glob, String> {
        let chars: Vec<char> = source.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            match c {
                '*' => {
                    let cross_slash = chars.get(i + 1) == Some(&'*');
                    i += if cross_slash { 2 } else { 1 };
                    tokens.push(Token::Star { cross_slash });
                    continue;
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    let (token, next) = class(&chars, i)
                        .ok_or_else(|| format!("pattern {source:?} has an unterminated `[`"))?;
                    tokens.push(token);
                    i = next;
                    continue;
                }
                '\\' => {
                    i += 1;
                    let escaped = chars
                        .get(i)
                        .copied()
                        .ok_or_else(|| format!("pattern {source:?} ends with a lone `\\`"))?;
                    tokens.push(Token::Char(escaped));
                }
                other => tokens.push(Token::Char(other)),
            }
            i += 1;
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `text` matches: a dynamic-programming pass over the text, one
    /// row per pattern token (time O(pattern × text), no recursion, no backtracking blow-up).
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // reach[t]: the pattern so far can consume exactly the first t characters.
        let mut reach = vec![false; text.len() + 1];
        if let Some(first) = reach.first_mut() {
            *first = true;
        }
        for token in &self.tokens {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::Star { cross_slash } => {
                    let mut open = false;
                    for (t, slot) in next.iter_mut().enumerate() {
                        if reach.get(t).copied().unwrap_or(false) {
                            open = true;
                        }
                        *slot = open;
                        // The star may extend over text[t] unless it is a `/` it cannot cross.
                        if let Some(&c) = text.get(t)
                            && c == '/'
                            && !cross_slash
                        {
                            open = false;
                        }
                    }
                }
                single_token => {
                    for (t, &c) in text.iter().enumerate() {
                        if reach.get(t).copied().unwrap_or(false)
                            && single(single_token, c)
                            && let Some(slot) = next.get_mut(t + 1)
                        {
                            *slot = true;
                        }
                    }
                }
            }
            if !next.iter().any(|r| *r) {
                return false;
            }
            reach = next;
        }
        reach.last().copied().unwrap_or(false)
    }
}

fn single(token: &Token, c: char) -> bool {
    match token {
        Token::Char(x) => *x == c,
        Token::Any => true,
        Token::Class { negated, items } => {
            items.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
        Token::Star { .. } => false,
    }
}

/// Parse a `[…]` class starting at `chars[start] == '['`; returns it and the index after `]`.
fn class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        first = false;
        if chars.get(i + 1) == Some(&'-')
            && let Some(&hi) = chars.get(i + 2)
            && hi != ']'
        {
            items.push((c, hi));
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn globs_match_like_the_shell_with_slash_aware_stars() {
        assert!(m("mkfs*", "mkfs.ext4"));
        assert!(m("mkfs*", "mkfs"));
        assert!(!m("mkfs*", "xmkfs"));
        assert!(m("/*", "/etc"));
        assert!(!m("/*", "/etc/passwd"));
        assert!(m("/etc/**", "/etc/ssh/sshd_config"));
        assert!(m("of=/dev/**", "of=/dev/sda"));
        assert!(m("-[rR]*", "-rf"));
        assert!(m("-[!-]*[rR]*", "-fr"));
        assert!(!m("-[!-]*[rR]*", "--preserve-root"));
        assert!(m("/dev/sd?", "/dev/sda"));
        assert!(m("[a-c]x", "bx") && !m("[!a-c]x", "bx"));
        assert!(m("\\*", "*") && !m("\\*", "a"));
        assert!(Glob::new("[abc").is_err());
        assert!(m("", "") && !m("", "a"));
        assert!(m("a**b*c", "ab/bc"), "an earlier `**` takes the slash");
        assert!(!m("a*c", "ab/c"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(10_000);
        let started = std::time::Instant::now();
        assert!(!m("**a**a**a**a**b", &text));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
