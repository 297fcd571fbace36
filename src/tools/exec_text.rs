//! The text content of an `execute_kasm_command` result, written for a model to read: the
//! exit code (with what it means), the duration, then stdout and stderr each as its own plain
//! text block — never escaped JSON. A cut stream says where it was cut and how to get the
//! rest. `structuredContent` keeps the machine form; this module only renders text.
//!
//! Pure functions of an [`ExecView`], so every case is tested without a session.

use crate::relay::frame::ExecReport;

/// One output stream as far as it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamView<'a> {
    /// The bytes kept from the start of the stream.
    pub head: &'a [u8],
    /// The bytes kept from the end when the middle is left out (empty otherwise).
    pub tail: &'a [u8],
    /// More was written than `head` and `tail` hold.
    pub truncated: bool,
    /// Bytes left out between `head` and `tail`, when known.
    pub omitted: Option<u64>,
    /// Where the whole stream is stored in the session, when it is.
    pub full_output: Option<&'a str>,
}

impl<'a> StreamView<'a> {
    /// The first `cap` bytes of `bytes` (all that the wrapper collects today).
    pub fn head_of(bytes: &'a [u8], cap: usize) -> Self {
        StreamView {
            head: bytes.get(..cap).unwrap_or(bytes),
            truncated: bytes.len() > cap,
            ..StreamView::default()
        }
    }
}

/// The limits a hint about getting more output or time refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max_output_bytes` of this call.
    pub max_output_bytes: usize,
    /// The server's `policy.max_output_bytes`.
    pub server_max_output_bytes: usize,
    /// `timeout_s` of this call.
    pub timeout_s: u64,
    /// The server's `policy.max_timeout_s`.
    pub server_max_timeout_s: u64,
}

/// What one run of a command produced, as far as the text shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecView<'a> {
    pub exit_code: i64,
    pub timed_out: bool,
    /// Processes the command left behind still held its output when it was collected.
    pub incomplete: bool,
    pub duration_ms: Option<u64>,
    pub stdout: StreamView<'a>,
    pub stderr: StreamView<'a>,
    pub limits: Limits,
}

impl<'a> ExecView<'a> {
    /// The view of a report from the exec wrapper, each stream cut at `max_output_bytes`.
    pub fn of_report(report: &'a ExecReport, limits: Limits) -> Self {
        ExecView {
            exit_code: report.exit_code,
            timed_out: report.timed_out,
            incomplete: report.incomplete,
            duration_ms: report.duration_ms,
            stdout: StreamView::head_of(&report.stdout, limits.max_output_bytes),
            stderr: StreamView::head_of(&report.stderr, limits.max_output_bytes),
            limits,
        }
    }
}

/// The text blocks of the result: a summary, then stdout, then stderr.
pub fn render(view: &ExecView<'_>) -> Vec<String> {
    vec![
        summary(view),
        stream("stdout", &view.stdout, &view.limits),
        stream("stderr", &view.stderr, &view.limits),
    ]
}

fn summary(view: &ExecView<'_>) -> String {
    let limits = &view.limits;
    let mut text = if view.timed_out {
        format!(
            "Timed out: the command ran longer than timeout_s ({} s) and was killed (exit code {}); its output up to then is below. {}",
            limits.timeout_s,
            view.exit_code,
            if limits.timeout_s < limits.server_max_timeout_s {
                format!(
                    "If it needs longer, run it again with a larger timeout_s (this server allows up to {} s).",
                    limits.server_max_timeout_s
                )
            } else {
                "This is the server's longest timeout: start long work in the background with its output in a file (`nohup cmd > /tmp/cmd.log 2>&1 &`) and read the file later.".to_string()
            }
        )
    } else {
        format!(
            "Exit code: {}{}",
            view.exit_code,
            exit_meaning(view.exit_code)
        )
    };
    text.push_str(&format!(
        "\nDuration: {}",
        view.duration_ms.map_or("unknown".into(), duration)
    ));
    if view.incomplete {
        text.push_str("\nNote: the command exited but left processes running that still held its stdout/stderr; output they wrote later is missing. Send a background program's output to a file (`prog > /tmp/prog.log 2>&1 &`) and read the file.");
    }
    text
}

/// What an exit code says, for codes with a fixed meaning.
fn exit_meaning(code: i64) -> String {
    match code {
        0 => String::new(),
        126 => {
            " (the command was found but could not be executed: no permission, or not a program)"
                .into()
        }
        127 => " (command not found: the program is not installed or not on PATH)".into(),
        129..=192 => {
            let signal = code - 128;
            let name = match signal {
                1 => " SIGHUP",
                2 => " SIGINT",
                3 => " SIGQUIT",
                6 => " SIGABRT",
                9 => " SIGKILL",
                11 => " SIGSEGV",
                13 => " SIGPIPE",
                15 => " SIGTERM",
                _ => "",
            };
            format!(" (killed by signal {signal}{name})")
        }
        _ => " (non-zero: the command reported a failure)".into(),
    }
}

fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        let tenths = ms / 100;
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

/// How a stream's bytes can be shown.
enum Shown {
    Text(String),
    /// Mostly text with some bytes that are not UTF-8 (shown as U+FFFD).
    Lossy(String),
    /// Not text: not shown.
    Binary,
}

/// Decode `bytes`; `cut_end`/`cut_start` say the stream continues after/before them, so a
/// character split there is dropped (as `decode_output` does for `structuredContent`).
fn shown(bytes: &[u8], cut_end: bool, cut_start: bool) -> Shown {
    let mut bytes = bytes;
    if cut_start {
        let skip = bytes
            .iter()
            .take(3)
            .take_while(|b| (**b & 0xC0) == 0x80)
            .count();
        bytes = bytes.get(skip..).unwrap_or_default();
    }
    if cut_end
        && let Err(e) = std::str::from_utf8(bytes)
        && e.error_len().is_none()
    {
        bytes = bytes.get(..e.valid_up_to()).unwrap_or_default();
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Shown::Text(text.to_string());
    }
    let invalid: usize = bytes.utf8_chunks().map(|c| c.invalid().len()).sum();
    // NUL bytes mixed in, or more undecodable bytes than one in eight (and than a few
    // stray Latin-1 letters in a short line): data, not text.
    if bytes.contains(&0) || invalid > (bytes.len() / 8).max(4) {
        Shown::Binary
    } else {
        Shown::Lossy(String::from_utf8_lossy(bytes).into_owned())
    }
}

fn push_line(out: &mut String, text: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(text);
}

fn stream(name: &str, s: &StreamView<'_>, limits: &Limits) -> String {
    if s.head.is_empty() && s.tail.is_empty() && !s.truncated {
        return format!("{name}: empty");
    }
    let has_tail = !s.tail.is_empty();
    let head = shown(s.head, s.truncated, false);
    let tail = has_tail.then(|| shown(s.tail, false, true));
    let any_binary = matches!(head, Shown::Binary) || matches!(tail, Some(Shown::Binary));
    let any_lossy = matches!(head, Shown::Lossy(_)) || matches!(tail, Some(Shown::Lossy(_)));
    let kept = s.head.len().saturating_add(s.tail.len());
    let size = match (s.truncated, s.omitted) {
        (false, _) => format!("{kept} bytes"),
        (true, Some(omitted)) => format!(
            "{} bytes, of which the middle {omitted} are left out",
            u64::try_from(kept)
                .unwrap_or(u64::MAX)
                .saturating_add(omitted)
        ),
        (true, None) if has_tail => format!("more than {kept} bytes; the middle is left out"),
        (true, None) => format!("more than {kept} bytes; only the first {kept} are shown"),
    };
    if any_binary {
        return format!(
            "{name} ({size}): binary data, not shown as text. The exact bytes are in structuredContent.{name}_base64; to look at them here, run the command again piped through `od -c | head -n 40`, or save them to a file."
        );
    }
    let mut out = format!("{name} ({size}");
    if any_lossy {
        out.push_str(&format!(
            "; not valid UTF-8: undecodable bytes are shown as \u{FFFD}, the exact bytes are in structuredContent.{name}_base64"
        ));
    }
    out.push_str("):\n");
    if let Shown::Text(text) | Shown::Lossy(text) = head {
        out.push_str(&text);
    }
    if s.truncated {
        push_line(&mut out, &cut_line(s, limits));
    }
    if let Some(Shown::Text(text) | Shown::Lossy(text)) = tail {
        push_line(&mut out, &text);
    }
    out
}

/// The line at the cut: how much is left out, and where the rest is or how to get it.
fn cut_line(s: &StreamView<'_>, limits: &Limits) -> String {
    let omitted = s
        .omitted
        .map_or_else(|| "more".to_string(), |n| format!("{n} bytes"));
    if let Some(path) = s.full_output {
        return format!("… {omitted} omitted, full output in {path}");
    }
    let more = if limits.max_output_bytes < limits.server_max_output_bytes {
        format!(
            "run the command again with a larger max_output_bytes (this server allows up to {}), or send its output to a file",
            limits.server_max_output_bytes
        )
    } else {
        "that is this server's maximum, so send the command's output to a file".to_string()
    };
    format!(
        "… {omitted} omitted: output is cut at max_output_bytes ({} bytes) and the rest was not kept. To see more, {more} (`cmd > /tmp/out.txt 2>&1`) and read it in parts (read_kasm_file, or `tail -c 65536 /tmp/out.txt` and `grep` in another command).",
        limits.max_output_bytes
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_output_bytes: 16,
        server_max_output_bytes: 1024,
        timeout_s: 60,
        server_max_timeout_s: 600,
    };

    fn view<'a>(exit_code: i64, stdout: StreamView<'a>, stderr: StreamView<'a>) -> ExecView<'a> {
        ExecView {
            exit_code,
            timed_out: false,
            incomplete: false,
            duration_ms: Some(12),
            stdout,
            stderr,
            limits: LIMITS,
        }
    }

    /// All of `bytes`, not cut.
    fn whole(bytes: &[u8]) -> StreamView<'_> {
        StreamView::head_of(bytes, bytes.len())
    }

    /// `bytes` as the wrapper collects them under [`LIMITS`].
    fn cut(bytes: &[u8]) -> StreamView<'_> {
        StreamView::head_of(bytes, LIMITS.max_output_bytes)
    }

    /// Table: (case, view, expected blocks).
    #[test]
    fn each_kind_of_outcome_reads_as_text() {
        let long = b"0123456789abcdefTHE-REST";
        let cases: Vec<(&str, ExecView<'_>, [&str; 3])> = vec![
            (
                "small",
                view(0, whole(b"hello\n"), whole(b"")),
                [
                    "Exit code: 0\nDuration: 12 ms",
                    "stdout (6 bytes):\nhello\n",
                    "stderr: empty",
                ],
            ),
            (
                "non-zero exit with stderr",
                view(3, whole(b"partial"), whole(b"error: no such file\n")),
                [
                    "Exit code: 3 (non-zero: the command reported a failure)\nDuration: 12 ms",
                    "stdout (7 bytes):\npartial",
                    "stderr (20 bytes):\nerror: no such file\n",
                ],
            ),
            (
                "empty output",
                view(0, whole(b""), whole(b"")),
                [
                    "Exit code: 0\nDuration: 12 ms",
                    "stdout: empty",
                    "stderr: empty",
                ],
            ),
            (
                "not found",
                view(127, whole(b""), whole(b"sh: 1: nope: not found\n")),
                [
                    "Exit code: 127 (command not found: the program is not installed or not on PATH)\nDuration: 12 ms",
                    "stdout: empty",
                    "stderr (23 bytes):\nsh: 1: nope: not found\n",
                ],
            ),
            (
                "truncated at the call's limit",
                view(0, cut(long), whole(b"")),
                [
                    "Exit code: 0\nDuration: 12 ms",
                    "stdout (more than 16 bytes; only the first 16 are shown):\n0123456789abcdef\n… more omitted: output is cut at max_output_bytes (16 bytes) and the rest was not kept. To see more, run the command again with a larger max_output_bytes (this server allows up to 1024), or send its output to a file (`cmd > /tmp/out.txt 2>&1`) and read it in parts (read_kasm_file, or `tail -c 65536 /tmp/out.txt` and `grep` in another command).",
                    "stderr: empty",
                ],
            ),
            (
                "truncated with a stored full output",
                view(
                    0,
                    StreamView {
                        head: b"first\n",
                        tail: b"last\n",
                        truncated: true,
                        omitted: Some(1000),
                        full_output: Some("/tmp/kmcp-jobs/j1/stdout"),
                    },
                    whole(b""),
                ),
                [
                    "Exit code: 0\nDuration: 12 ms",
                    "stdout (1011 bytes, of which the middle 1000 are left out):\nfirst\n… 1000 bytes omitted, full output in /tmp/kmcp-jobs/j1/stdout\nlast\n",
                    "stderr: empty",
                ],
            ),
            (
                "not UTF-8, mostly text",
                view(0, whole(b"caf\xe9 ok here\n"), whole(b"")),
                [
                    "Exit code: 0\nDuration: 12 ms",
                    "stdout (13 bytes; not valid UTF-8: undecodable bytes are shown as \u{FFFD}, the exact bytes are in structuredContent.stdout_base64):\ncaf\u{FFFD} ok here\n",
                    "stderr: empty",
                ],
            ),
            (
                "binary",
                view(0, whole(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"), whole(b"")),
                [
                    "Exit code: 0\nDuration: 12 ms",
                    "stdout (12 bytes): binary data, not shown as text. The exact bytes are in structuredContent.stdout_base64; to look at them here, run the command again piped through `od -c | head -n 40`, or save them to a file.",
                    "stderr: empty",
                ],
            ),
            (
                "killed by a signal",
                view(137, whole(b""), whole(b"")),
                [
                    "Exit code: 137 (killed by signal 9 SIGKILL)\nDuration: 12 ms",
                    "stdout: empty",
                    "stderr: empty",
                ],
            ),
        ];
        for (case, view, expected) in cases {
            assert_eq!(render(&view), expected, "case {case}");
        }
    }

    #[test]
    fn a_timeout_and_left_behind_writers_are_stated() {
        let mut v = view(124, whole(b"before\n"), whole(b""));
        v.timed_out = true;
        v.incomplete = true;
        v.duration_ms = Some(2_345);
        v.limits.timeout_s = 2;
        let blocks = render(&v);
        assert_eq!(
            blocks[0],
            "Timed out: the command ran longer than timeout_s (2 s) and was killed (exit code 124); its output up to then is below. If it needs longer, run it again with a larger timeout_s (this server allows up to 600 s).\nDuration: 2.3 s\nNote: the command exited but left processes running that still held its stdout/stderr; output they wrote later is missing. Send a background program's output to a file (`prog > /tmp/prog.log 2>&1 &`) and read the file."
        );
        v.limits.timeout_s = 600;
        assert!(render(&v)[0].contains("the server's longest timeout"));
    }

    #[test]
    fn at_the_server_maximum_the_hint_points_to_a_file() {
        let mut v = view(0, cut(b"0123456789abcdefMORE"), whole(b""));
        v.limits.server_max_output_bytes = 16;
        let text = &render(&v)[1];
        assert!(
            text.contains("that is this server's maximum, so send the command's output to a file"),
            "{text}"
        );
    }

    #[test]
    fn a_character_split_by_the_cut_is_dropped_not_garbled() {
        // 'é' is two bytes; a cap of 2 keeps "a" and half of it.
        let bytes = "aé and more".as_bytes();
        let v = view(0, StreamView::head_of(bytes, 2), whole(b""));
        let text = &render(&v)[1];
        assert!(
            text.starts_with(
                "stdout (more than 2 bytes; only the first 2 are shown):\na\n… more omitted"
            ),
            "{text}"
        );
        assert!(!text.contains('\u{FFFD}'), "{text}");
        // A tail that starts inside a character skips its continuation bytes.
        let s = StreamView {
            head: b"x",
            tail: &"é!".as_bytes()[1..],
            truncated: true,
            omitted: Some(1),
            full_output: Some("/f"),
        };
        let text = stream("stdout", &s, &LIMITS);
        assert!(text.ends_with("full output in /f\n!"), "{text}");
    }

    #[test]
    fn durations_read_in_the_right_unit() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(999), "999 ms");
        assert_eq!(duration(1_000), "1.0 s");
        assert_eq!(duration(61_234), "61.2 s");
        assert_eq!(
            duration(u64::MAX),
            format!("{}.{} s", u64::MAX / 1000, (u64::MAX / 100) % 10)
        );
    }
}
