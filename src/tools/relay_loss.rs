//! What to tell the caller when a session's wrapper ran but its result is lost or cannot be
//! read — in words that say what happened and what to do, not a parser's complaint.
//!
//! The wrapper keeps its work files (the output it collected, the record it uploads) in
//! directories `kmcp*` (`kmcp.*`, `kmcp-new.*`, `kmcp-job.*`) under `$TMPDIR` or `/tmp` inside
//! the session. When a command removes them (`rm -rf /tmp/*`), the wrapper sends `<KIND> err
//! workdir_removed [exit code]` from a new directory; an older wrapper, or an uploader that
//! posts a missing file as an empty body, sends nothing at all. Both mean the same, and a
//! record cut short no longer matches its own header.

use bytes::Bytes;

use super::support::ToolError;
use crate::relay::Purpose;
use crate::relay::frame::{Frame, FrameError, parse_frame};

/// Where the wrapper's work files are, for the messages.
const WORK_FILES: &str = "its work directories kmcp* under $TMPDIR or /tmp in the session";

/// The wrapper's record from an upload `body`, or the error that says in words why there is
/// none: the work files were removed (an empty body or a `workdir_removed` record), or the
/// record does not follow the format.
pub fn record(
    purpose: Purpose,
    what: &str,
    kasm_id: &str,
    body: Bytes,
) -> Result<Frame, ToolError> {
    if body.is_empty() {
        return Err(work_files_removed(purpose, what, kasm_id, None));
    }
    let frame = parse_frame(body).map_err(|e| unreadable(&e))?;
    let word = |i: usize| frame.words.get(i).map(String::as_str);
    if word(1) == Some("err") && word(2) == Some("workdir_removed") {
        let exit_code = word(3).and_then(|w| w.parse::<i64>().ok());
        return Err(work_files_removed(purpose, what, kasm_id, exit_code));
    }
    Ok(frame)
}

/// The wrapper's work files were gone when it packed the result (after the command exited
/// with `exit_code`, when the wrapper knew it).
fn work_files_removed(
    purpose: Purpose,
    what: &str,
    kasm_id: &str,
    exit_code: Option<i64>,
) -> ToolError {
    let (subject, advice) = if purpose == Purpose::ExecResult {
        (
            match exit_code {
                Some(code) => format!("the command ran and exited with code {code}, but it removed the files the output collector needed, so its output is lost"),
                None => "the command ran, but it removed the files the output collector needed, so its exit status and output are unknown".to_string(),
            },
            "Do not delete kmcp* in /tmp from a command (to empty /tmp, spare them: `find /tmp -mindepth 1 -maxdepth 1 ! -name 'kmcp*' -exec rm -rf {} +`); check what the command did with a second command",
        )
    } else {
        (
            format!("{what} in session {kasm_id} lost its result, so its outcome is unknown"),
            "Something in the session (a command that cleans /tmp?) removed them while it ran; run the call again",
        )
    };
    ToolError::new(format!(
        "{subject}: the wrapper that collects the result found {WORK_FILES} gone when it packed the result. {advice}."
    ))
}

/// The upload is not a record the wrapper writes: cut short or changed while it was packed.
pub fn unreadable(error: &FrameError) -> ToolError {
    ToolError::new(format!(
        "the result the session sent back could not be read ({}): the wrapper's files ({WORK_FILES}) were probably changed or removed while it ran, e.g. by a command that cleans /tmp, or the session's disk is full. The outcome is unknown; check it with another call",
        error.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(purpose: Purpose, body: &'static [u8]) -> String {
        record(purpose, "reading the file", "k1", Bytes::from_static(body))
            .map(|f| format!("a frame: {:?}", f.words))
            .unwrap_or_else(|e| e.0)
    }

    #[test]
    fn removed_work_files_are_named_as_the_cause() {
        for body in [&b""[..], b"EXEC err workdir_removed\n"] {
            let msg = error(Purpose::ExecResult, body);
            assert!(
                msg.starts_with("the command ran, but it removed the files the output collector needed, so its exit status and output are unknown"),
                "{msg}"
            );
            assert!(
                msg.contains("kmcp*") && !msg.contains("kmcp.*") && !msg.contains("malformed"),
                "{msg}"
            );
        }
        let msg = error(Purpose::ExecResult, b"EXEC err workdir_removed 0\n");
        assert!(
            msg.starts_with("the command ran and exited with code 0, but it removed the files the output collector needed, so its output is lost"),
            "{msg}"
        );
        let msg = error(Purpose::FileUpload, b"READ err workdir_removed\n");
        assert!(
            msg.starts_with("reading the file in session k1 lost its result"),
            "{msg}"
        );
    }

    #[test]
    fn other_records_pass_and_garbage_is_explained() {
        assert_eq!(
            error(Purpose::FileUpload, b"READ err not_found\n"),
            r#"a frame: ["READ", "err", "not_found"]"#
        );
        let msg = error(Purpose::ExecResult, b"no newline");
        assert!(msg.contains("could not be read (no header line)"), "{msg}");
        assert!(msg.contains("changed or removed while it ran"), "{msg}");
    }
}
