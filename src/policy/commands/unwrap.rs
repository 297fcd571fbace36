//! Peel wrappers off a simple command until the program that really runs is reached:
//! `sudo -u root env X=1 nice -n 5 /bin/rm -rf /` is `rm -rf /`. Shells with `-c` (and `su -c`,
//! `flock -c`, `watch`, `env -S`, a static `eval`) hand back their script text, which the
//! extractor parses again; `find -exec` yields the command it runs as a second command.
//!
//! Option parsing follows each tool's documented options closely enough to find the operand
//! that is the command; an option word that is not static stops the peeling (unresolved).

use super::model::Word;

/// Most wrappers peeled off one command (`nice nice nice …`).
pub const MAX_WRAPPERS: usize = 16;
/// Deepest `find … -exec find … -exec …` followed.
pub const MAX_FIND_NESTING: usize = 4;

/// What a command word list turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwrapped {
    /// The program that runs, reduced to its base name, with its arguments.
    Command {
        program: String,
        args: Vec<Word>,
        open_args: bool,
    },
    /// A script to parse again (`sh -c TEXT`).
    Script(String),
    /// Something that cannot be judged statically, and why.
    Unresolved(String),
}

const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "rbash", "posh", "yash", "fish",
];

/// `/bin/rm`, `./rm`, `../x/rm` → `rm`.
pub fn base_name(word: &str) -> &str {
    match word.rsplit('/').next() {
        Some(base) if !base.is_empty() => base,
        _ => word,
    }
}

/// Options of one wrapper: short options that take a value, long ones that do.
struct Options<'a> {
    short_values: &'a str,
    long_values: &'a [&'a str],
}

/// Where option parsing stopped.
enum Scan {
    /// Index of the first operand (may be `words.len()`: none).
    Operand(usize),
    /// An option word is not static.
    Dynamic,
}

impl Options<'_> {
    /// Skip options starting at `start`; `seen` gets every short flag character and long name.
    fn scan(&self, words: &[Word], start: usize, seen: &mut Vec<String>) -> Scan {
        let mut i = start;
        while let Some(word) = words.get(i) {
            let Some(word) = word.as_deref() else {
                return Scan::Dynamic;
            };
            if word == "--" {
                return Scan::Operand(i + 1);
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((name, _)) => (name, true),
                    None => (long, false),
                };
                seen.push(name.to_string());
                i += if !inline && self.long_values.contains(&name) {
                    2
                } else {
                    1
                };
                continue;
            }
            let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) else {
                return Scan::Operand(i);
            };
            i += 1;
            for (at, flag) in cluster.char_indices() {
                seen.push(flag.to_string());
                if self.short_values.contains(flag) {
                    if cluster.len() == at + flag.len_utf8() {
                        i += 1; // the value is the next word
                    }
                    break;
                }
            }
        }
        Scan::Operand(i)
    }
}

/// The value of option `-short` / `--long` (e.g. `-c` / `--command`); `None` when absent.
/// Scanning stops after `operands` words that are not options (the command itself begins).
fn option_value(words: &[Word], short: char, long: &str, operands: usize) -> Option<Word> {
    let mut iter = words.iter().skip(1);
    let mut seen_operands = 0;
    while let Some(word) = iter.next() {
        let Some(word) = word.as_deref() else {
            continue;
        };
        if word == "--" {
            break;
        }
        if !word.starts_with('-') {
            seen_operands += 1;
            if seen_operands > operands {
                break;
            }
            continue;
        }
        if let Some(value) = word.strip_prefix(&format!("--{long}=")) {
            return Some(Some(value.to_string()));
        }
        if word == format!("--{long}") {
            return iter.next().cloned();
        }
        if let Some(cluster) = word.strip_prefix('-').filter(|c| !c.starts_with('-'))
            && let Some(at) = cluster.find(short)
        {
            let rest = cluster.get(at + 1..).unwrap_or_default();
            return if rest.is_empty() {
                iter.next().cloned()
            } else {
                Some(Some(rest.to_string()))
            };
        }
    }
    None
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn script(value: Option<Word>, what: &str) -> Unwrapped {
    match value {
        Some(Some(text)) => Unwrapped::Script(text),
        Some(None) => Unwrapped::Unresolved(format!(
            "the script given to {what} is only known at run time"
        )),
        None => Unwrapped::Unresolved(format!("{what} has no script argument")),
    }
}

/// One peeling step: the rest of the words when `words[0]` is a wrapper, or a final answer.
enum Step {
    Rest(Vec<Word>, bool),
    Done(Vec<Unwrapped>),
}

fn rest_after(words: &[Word], operand: usize) -> Vec<Word> {
    words.get(operand..).unwrap_or_default().to_vec()
}

fn wrapper(program: &str, words: &[Word], open_args: bool, depth: usize) -> Step {
    let mut seen = Vec::new();
    let scan = |options: Options<'_>, seen: &mut Vec<String>| options.scan(words, 1, seen);
    let plain = |short_values, long_values| Options {
        short_values,
        long_values,
    };
    let found = match program {
        "sudo" => scan(
            plain(
                "ugpCDrtTUR",
                &[
                    "user",
                    "group",
                    "prompt",
                    "close-from",
                    "chdir",
                    "role",
                    "type",
                    "command-timeout",
                    "other-user",
                    "host",
                ],
            ),
            &mut seen,
        ),
        "doas" => scan(plain("uC", &[]), &mut seen),
        "env" => {
            if let Some(value) = option_value(words, 'S', "split-string", 0) {
                return match value {
                    Some(text) => Step::Done(vec![Unwrapped::Script(text)]),
                    None => Step::Done(vec![Unwrapped::Unresolved(
                        "the string given to env -S is only known at run time".into(),
                    )]),
                };
            }
            scan(plain("uC", &["unset", "chdir"]), &mut seen)
        }
        "nice" => scan(plain("n", &["adjustment"]), &mut seen),
        "nohup" | "setsid" | "builtin" | "unbuffer" | "fakeroot" | "catchsegv" => {
            scan(plain("", &[]), &mut seen)
        }
        "time" => scan(plain("fo", &["format", "output"]), &mut seen),
        "command" => {
            let found = scan(plain("", &[]), &mut seen);
            if seen.iter().any(|f| f == "v" || f == "V") {
                return Step::Done(Vec::new()); // `command -v x` only looks x up
            }
            found
        }
        "exec" => scan(plain("a", &[]), &mut seen),
        "stdbuf" => scan(plain("ioe", &["input", "output", "error"]), &mut seen),
        "ionice" => scan(plain("cnp", &["class", "classdata", "pid"]), &mut seen),
        "timeout" | "taskset" | "chroot" => {
            let found = match program {
                "timeout" => scan(plain("sk", &["signal", "kill-after"]), &mut seen),
                "chroot" => scan(plain("", &["userspec", "groups"]), &mut seen),
                _ => scan(plain("", &[]), &mut seen),
            };
            match found {
                // The first operand is the duration / CPU mask / new root.
                Scan::Operand(i) if program == "chroot" && i + 1 >= words.len() => {
                    return Step::Done(vec![Unwrapped::Command {
                        program: "sh".into(),
                        args: vec![Some("-s".into())],
                        open_args,
                    }]);
                }
                Scan::Operand(i) => Scan::Operand(i + 1),
                Scan::Dynamic => Scan::Dynamic,
            }
        }
        "flock" => {
            if let Some(value) = option_value(words, 'c', "command", 1) {
                return Step::Done(vec![script(Some(value), "flock -c")]);
            }
            match scan(plain("wEc", &["timeout", "conflict-exit-code"]), &mut seen) {
                Scan::Operand(i) => Scan::Operand(i + 1),
                Scan::Dynamic => Scan::Dynamic,
            }
        }
        "xargs" => {
            let found = scan(
                plain(
                    "adEILnPs",
                    &[
                        "arg-file",
                        "delimiter",
                        "eof",
                        "replace",
                        "max-lines",
                        "max-args",
                        "max-procs",
                        "max-chars",
                        "process-slot-var",
                    ],
                ),
                &mut seen,
            );
            if let Scan::Operand(i) = found
                && i >= words.len()
            {
                return Step::Rest(vec![Some("echo".into())], true);
            }
            return match found {
                Scan::Operand(i) => Step::Rest(rest_after(words, i), true),
                Scan::Dynamic => Step::Done(vec![Unwrapped::Unresolved(
                    "an xargs option is only known at run time".into(),
                )]),
            };
        }
        // Reserved words the grammar sometimes leaves in command position (`! ! rm`).
        "busybox" | "!" | "{" | "}" | "do" | "then" | "else" | "elif" | "if" | "while"
        | "until" | "coproc" => Scan::Operand(1),
        "watch" => {
            return match scan(plain("nqg", &["interval"]), &mut seen) {
                Scan::Operand(i) => {
                    let rest = rest_after(words, i);
                    let joined: Option<Vec<String>> = rest.into_iter().collect();
                    Step::Done(vec![script(Some(joined.map(|w| w.join(" "))), "watch")])
                }
                Scan::Dynamic => Step::Done(vec![Unwrapped::Unresolved(
                    "a watch option is only known at run time".into(),
                )]),
            };
        }
        "su" | "runuser" => {
            if let Some(value) = option_value(words, 'c', "command", usize::MAX) {
                return Step::Done(vec![script(Some(value), program)]);
            }
            return Step::Done(vec![final_command(program, words, open_args)]);
        }
        "eval" => {
            let rest: Option<Vec<String>> = words.iter().skip(1).cloned().collect();
            return Step::Done(vec![match rest {
                Some(parts) => Unwrapped::Script(parts.join(" ")),
                None => {
                    Unwrapped::Unresolved("eval runs text that is only known at run time".into())
                }
            }]);
        }
        shell if SHELLS.contains(&shell) => {
            return Step::Done(vec![shell_command(shell, words, open_args)]);
        }
        "find" => return Step::Done(find_command(words, open_args, depth)),
        _ => return Step::Done(vec![final_command(program, words, open_args)]),
    };
    match found {
        // A wrapper with no command runs nothing we need to judge (`sudo -v`, `env`).
        Scan::Operand(i) => {
            let mut i = i;
            if matches!(program, "sudo" | "env" | "doas") {
                while words
                    .get(i)
                    .and_then(|w| w.as_deref())
                    .is_some_and(is_assignment)
                {
                    i += 1;
                }
            }
            if i >= words.len() {
                return Step::Done(vec![final_command(program, words, open_args)]);
            }
            Step::Rest(rest_after(words, i), open_args)
        }
        Scan::Dynamic => Step::Done(vec![Unwrapped::Unresolved(format!(
            "an option of {program} is only known at run time"
        ))]),
    }
}

fn final_command(program: &str, words: &[Word], open_args: bool) -> Unwrapped {
    Unwrapped::Command {
        program: program.to_string(),
        args: words.iter().skip(1).cloned().collect(),
        open_args,
    }
}

/// `sh -c TEXT`, `bash -lc TEXT`, `bash script.sh`, or a shell reading its script from stdin
/// (normalised to `sh -s`-style `[shell, "-s"]`).
fn shell_command(shell: &str, words: &[Word], open_args: bool) -> Unwrapped {
    let mut i = 1;
    let mut c_mode = false;
    while let Some(word) = words.get(i) {
        let Some(word) = word.as_deref() else {
            return Unwrapped::Unresolved(format!(
                "an option of {shell} is only known at run time"
            ));
        };
        if word == "--" || word == "-" {
            i += 1;
            break;
        }
        if matches!(word, "--rcfile" | "--init-file") {
            i += 2;
            continue;
        }
        if word.starts_with("--") {
            i += 1;
            continue;
        }
        let Some(cluster) = word.strip_prefix('-').or_else(|| word.strip_prefix('+')) else {
            break;
        };
        i += 1;
        if cluster.contains('c') {
            c_mode = true;
        }
        if cluster.contains('o') || cluster.contains('O') {
            i += 1; // -o OPTION
        }
    }
    if c_mode {
        return script(
            Some(words.get(i).cloned().unwrap_or(None)),
            &format!("{shell} -c"),
        )
        .or_missing(words.get(i).is_none(), shell);
    }
    if words.get(i).is_some() {
        return final_command(shell, words, open_args);
    }
    Unwrapped::Command {
        program: shell.to_string(),
        args: vec![Some("-s".into())],
        open_args,
    }
}

impl Unwrapped {
    fn or_missing(self, missing: bool, shell: &str) -> Unwrapped {
        if missing {
            Unwrapped::Unresolved(format!("{shell} -c has no script argument"))
        } else {
            self
        }
    }
}

/// `find` itself, plus each command it runs with `-exec`/`-execdir`/`-ok`/`-okdir`.
fn find_command(words: &[Word], open_args: bool, depth: usize) -> Vec<Unwrapped> {
    let mut out = vec![final_command("find", words, open_args)];
    let mut i = 1;
    while let Some(word) = words.get(i) {
        i += 1;
        if !matches!(
            word.as_deref(),
            Some("-exec" | "-execdir" | "-ok" | "-okdir")
        ) {
            continue;
        }
        let start = i;
        while words
            .get(i)
            .is_some_and(|w| !matches!(w.as_deref(), Some(";" | "+")))
        {
            i += 1;
        }
        let inner = words.get(start..i).unwrap_or_default();
        out.extend(unwrap_with(inner.to_vec(), true, depth + 1));
    }
    out
}

/// Peel every wrapper off `words` (`argv[0]` first).
pub fn unwrap(words: Vec<Word>) -> Vec<Unwrapped> {
    unwrap_with(words, false, 0)
}

fn unwrap_with(mut words: Vec<Word>, mut open_args: bool, depth: usize) -> Vec<Unwrapped> {
    if depth > MAX_FIND_NESTING {
        return vec![Unwrapped::Unresolved(format!(
            "find -exec nests more than {MAX_FIND_NESTING} levels deep"
        ))];
    }
    for _ in 0..MAX_WRAPPERS {
        let name = match words.first() {
            None => return Vec::new(),
            Some(None) => {
                return vec![Unwrapped::Unresolved(
                    "the command name is only known at run time ($VAR or $(…) in command position)"
                        .into(),
                )];
            }
            Some(Some(name)) => base_name(name).to_string(),
        };
        match wrapper(&name, &words, open_args, depth) {
            Step::Rest(rest, open) => {
                words = rest;
                open_args = open;
            }
            Step::Done(out) => return out,
        }
    }
    vec![Unwrapped::Unresolved(format!(
        "more than {MAX_WRAPPERS} nested command wrappers"
    ))]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Word> {
        shlex::split(line).unwrap().into_iter().map(Some).collect()
    }

    fn cmd(program: &str, args: &[&str], open_args: bool) -> Unwrapped {
        Unwrapped::Command {
            program: program.into(),
            args: args.iter().map(|a| Some(a.to_string())).collect(),
            open_args,
        }
    }

    #[test]
    fn wrappers_are_peeled_to_the_real_program() {
        let table: &[(&str, Unwrapped)] = &[
            ("/bin/rm -rf /", cmd("rm", &["-rf", "/"], false)),
            ("sudo -u root rm -rf /", cmd("rm", &["-rf", "/"], false)),
            ("sudo -Eu root -- rm x", cmd("rm", &["x"], false)),
            (
                "env -i X=1 FOO=bar rm -rf /",
                cmd("rm", &["-rf", "/"], false),
            ),
            (
                "nice -n 5 nohup timeout -s KILL 10 stdbuf -oL rm x",
                cmd("rm", &["x"], false),
            ),
            ("xargs -0 -n 1 rm -rf", cmd("rm", &["-rf"], true)),
            ("xargs", cmd("echo", &[], true)),
            ("busybox rm -rf /", cmd("rm", &["-rf", "/"], false)),
            ("! rm -rf /", cmd("rm", &["-rf", "/"], false)),
            ("coproc rm x", cmd("rm", &["x"], false)),
            ("command rm x", cmd("rm", &["x"], false)),
            ("exec -a foo rm x", cmd("rm", &["x"], false)),
            ("time -p rm x", cmd("rm", &["x"], false)),
            ("ionice -c 3 taskset -c 0 rm x", cmd("rm", &["x"], false)),
            ("chroot /mnt rm x", cmd("rm", &["x"], false)),
            (
                "bash script.sh arg",
                cmd("bash", &["script.sh", "arg"], false),
            ),
            ("sh", cmd("sh", &["-s"], false)),
            ("sudo bash", cmd("bash", &["-s"], false)),
            ("sh -c 'rm -rf /'", Unwrapped::Script("rm -rf /".into())),
            ("bash -lc 'echo ok'", Unwrapped::Script("echo ok".into())),
            ("bash -o pipefail -c x", Unwrapped::Script("x".into())),
            ("su -c 'rm x' root", Unwrapped::Script("rm x".into())),
            ("su root", cmd("su", &["root"], false)),
            ("env -S 'rm -rf /'", Unwrapped::Script("rm -rf /".into())),
            ("eval 'rm -rf /'", Unwrapped::Script("rm -rf /".into())),
            ("flock /tmp/l -c 'rm x'", Unwrapped::Script("rm x".into())),
            ("watch -n 1 rm x", Unwrapped::Script("rm x".into())),
        ];
        for (line, want) in table {
            let got = unwrap(words(line));
            assert_eq!(got.first(), Some(want), "{line}: {got:?}");
        }
        assert!(unwrap(words("command -v rm")).is_empty());
        assert_eq!(
            unwrap(words("env ls -lS")),
            vec![cmd("ls", &["-lS"], false)]
        );
        let deep_find = "find . -exec ".repeat(50);
        assert!(
            unwrap(words(&deep_find))
                .iter()
                .any(|u| matches!(u, Unwrapped::Unresolved(_)))
        );
    }

    #[test]
    fn find_exec_yields_the_command_it_runs() {
        let got = unwrap(words("find / -name x -exec /bin/rm -f {} ;"));
        assert_eq!(got.get(1), Some(&cmd("rm", &["-f", "{}"], true)), "{got:?}");
    }

    #[test]
    fn dynamic_words_are_unresolved() {
        for line in [
            vec![None, Some("-rf".into())],
            vec![Some("sh".into()), Some("-c".into()), None],
        ] {
            assert!(
                matches!(unwrap(line.clone()).first(), Some(Unwrapped::Unresolved(_))),
                "{line:?}"
            );
        }
        assert!(matches!(
            unwrap(vec![Some("eval".into()), None]).first(),
            Some(Unwrapped::Unresolved(_))
        ));
        let deep: Vec<Word> = std::iter::repeat_n(Some("nice".to_string()), 40).collect();
        assert!(matches!(
            unwrap(deep).first(),
            Some(Unwrapped::Unresolved(_))
        ));
    }
}
