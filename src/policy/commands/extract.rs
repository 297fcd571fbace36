//! The command extractor: shell text → every simple command that would run, every output
//! redirection target, and everything that cannot be judged statically. Parses with
//! [`super::parse`], peels wrappers with [`super::unwrap`], and parses the scripts handed to
//! `sh -c` and friends again, breadth first, up to [`MAX_SCRIPT_DEPTH`] levels.

use std::collections::{HashMap, VecDeque};

use super::model::{Extraction, SimpleCommand};
use super::parse::{MAX_COMMANDS, parse_script};
use super::unwrap::{Unwrapped, unwrap};

/// Deepest `sh -c "sh -c '…'"` nesting followed.
pub const MAX_SCRIPT_DEPTH: usize = 8;

/// Extract everything that `text` would run. Never panics; time and memory are bounded by the
/// text's length and the limits of [`super::parse`].
pub fn extract(text: &str) -> Extraction {
    let mut out = Extraction::default();
    let mut queue = VecDeque::from([(text.to_string(), 0usize)]);
    // Pipeline membership of every command: (pipeline id, position, program).
    let mut pipes: Vec<(usize, usize, usize)> = Vec::new();
    let mut next_pipe = 0usize;
    while let Some((script, depth)) = queue.pop_front() {
        if depth > MAX_SCRIPT_DEPTH {
            out.unresolved.push(format!(
                "shell scripts nest more than {MAX_SCRIPT_DEPTH} levels deep (sh -c \"sh -c …\")"
            ));
            continue;
        }
        let budget = MAX_COMMANDS.saturating_sub(out.commands.len());
        let parsed = parse_script(&script, next_pipe, budget);
        next_pipe = parsed
            .commands
            .iter()
            .filter_map(|c| c.pipe.map(|(id, _)| id + 1))
            .max()
            .unwrap_or(next_pipe)
            .max(next_pipe);
        out.redirects.extend(parsed.redirects);
        out.unresolved.extend(parsed.unresolved);
        out.recursive_functions.extend(parsed.recursive_functions);
        for raw in parsed.commands {
            for unwrapped in unwrap(raw.words) {
                match unwrapped {
                    Unwrapped::Command {
                        program,
                        args,
                        open_args,
                    } => {
                        if let Some((id, position)) = raw.pipe {
                            pipes.push((id, position, out.commands.len()));
                        }
                        out.commands.push(SimpleCommand {
                            program,
                            args,
                            open_args,
                            piped_from: Vec::new(),
                        });
                    }
                    Unwrapped::Script(text) => queue.push_back((text, depth + 1)),
                    Unwrapped::Unresolved(why) => out.unresolved.push(why),
                }
            }
        }
    }
    if let Some(why) = link_pipelines(&mut out.commands, &pipes) {
        out.unresolved.push(why);
    }
    out.unresolved.dedup();
    out
}

/// Most different programs remembered upstream in one pipeline.
pub const MAX_PIPE_SOURCES: usize = 64;

/// Fill `piped_from`: the distinct programs of the earlier elements of the same pipeline (one
/// pass per pipeline, so a 10,000-element pipeline costs 10,000 steps, not 10,000²). Returns
/// why, when a pipeline feeds from more programs than are remembered.
fn link_pipelines(
    commands: &mut [SimpleCommand],
    pipes: &[(usize, usize, usize)],
) -> Option<String> {
    let mut by_pipe: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
    for &(id, position, index) in pipes {
        by_pipe.entry(id).or_default().push((position, index));
    }
    let mut overflow = None;
    for members in by_pipe.values_mut() {
        members.sort_unstable();
        let mut upstream: Vec<String> = Vec::new();
        let mut at = 0;
        while let Some(&(position, _)) = members.get(at) {
            // Every member at this position sees the programs of the earlier positions.
            let same: Vec<usize> = members
                .iter()
                .skip(at)
                .take_while(|(p, _)| *p == position)
                .map(|(_, i)| *i)
                .collect();
            at += same.len();
            for &index in &same {
                if let Some(command) = commands.get_mut(index) {
                    command.piped_from = upstream.clone();
                }
            }
            for &index in &same {
                let Some(program) = commands.get(index).map(|c| c.program.clone()) else {
                    continue;
                };
                if upstream.contains(&program) {
                    continue;
                }
                if upstream.len() >= MAX_PIPE_SOURCES {
                    overflow = Some(format!(
                        "a pipeline feeds from more than {MAX_PIPE_SOURCES} different programs"
                    ));
                    continue;
                }
                upstream.push(program);
            }
        }
    }
    overflow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(text: &str) -> Vec<String> {
        extract(text)
            .commands
            .into_iter()
            .map(|c| c.display())
            .collect()
    }

    #[test]
    fn commands_are_found_at_every_level() {
        let table: &[(&str, &[&str])] = &[
            ("a | b && c || d; e & f", &["a", "b", "c", "d", "e", "f"]),
            ("(a; { b; }) && x=$(c `d`)", &["a", "b", "c …", "d"]),
            ("sh -c \"rm -rf /\"", &["rm -rf /"]),
            ("bash -lc 'echo ok; rm -rf /'", &["echo ok", "rm -rf /"]),
            ("sudo sh -c 'bash -c \"/bin/rm x\"'", &["rm x"]),
            (
                "if true; then for i in 1; do rm $i; done; fi",
                &["true", "rm …"],
            ),
            ("cat <(ls) >(wc)", &["cat … …", "ls", "wc"]),
            ("f(){ rm x; }; f", &["rm x", "f"]),
            ("echo \"$(rm -rf /)\"", &["echo …", "rm -rf /"]),
        ];
        for (text, want) in table {
            let mut got = programs(text);
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn pipelines_know_what_feeds_them() {
        let ex = extract("curl -s u | sudo bash");
        let bash = ex.commands.iter().find(|c| c.program == "bash").unwrap();
        assert_eq!(bash.piped_from, vec!["curl".to_string()]);
        assert_eq!(bash.args, vec![Some("-s".into())]);
        let ex = extract("wget -qO- u | tee x | sh; sh -c 'a | b'");
        let sh = ex.commands.iter().find(|c| c.program == "sh").unwrap();
        assert_eq!(sh.piped_from, vec!["wget".to_string(), "tee".to_string()]);
        let b = ex.commands.iter().find(|c| c.program == "b").unwrap();
        assert_eq!(b.piped_from, vec!["a".to_string()]);
    }

    #[test]
    fn long_pipelines_are_linked_in_linear_time() {
        let text = format!("curl u | {}sh", "cat | ".repeat(900));
        let started = std::time::Instant::now();
        let ex = extract(&text);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let sh = ex.commands.iter().find(|c| c.program == "sh").unwrap();
        assert_eq!(sh.piped_from, vec!["curl".to_string(), "cat".to_string()]);
        let many: String = (0..100).map(|i| format!("p{i} | ")).collect::<String>() + "sh";
        assert!(!extract(&many).unresolved.is_empty());
    }

    #[test]
    fn script_nesting_is_bounded() {
        let mut text = "rm x".to_string();
        for _ in 0..12 {
            text = format!("sh -c {}", shlex::try_quote(&text).unwrap());
        }
        assert!(!extract(&text).unresolved.is_empty());
    }
}
