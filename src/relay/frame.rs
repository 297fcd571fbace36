//! The format the wrapper scripts POST back: one ASCII header line of space-separated words,
//! `\n`, then raw bytes. Binary-safe and trivially produced with `printf` and `cat`.
//!
//! - exec: `EXEC <exit_code> <timed_out 0|1> <duration_ms|-> <stdout_len> <stderr_len> <incomplete 0|1>`
//!   + stdout + stderr (`incomplete`: processes the command left behind still held its output)
//! - read: `READ ok <size>` + bytes
//! - write status: `WRITE ok <sha256|->`
//! - listing: `LIST ok <truncated 0|1>` + `type\tsize\tname\0` records
//! - any failure inside the container: `<KIND> err <code> [detail…]` (`workdir_removed
//!   [exit_code]` when something removed the wrapper's own temp directory)
//! - a streamed job, on its stream ticket: `START <g|p> <pgid|pid|-> <spill dir>` once, then
//!   `CHUNK <seq> <o|e> <offset>` + bytes, any number of times

use bytes::Bytes;

/// Longest header line accepted.
const MAX_HEADER: usize = 1024;

/// Something the container sent that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the relay upload is malformed: {0}")]
pub struct FrameError(pub String);

fn bad(msg: impl Into<String>) -> FrameError {
    FrameError(msg.into())
}

/// A failure the wrapper reported from inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerError {
    /// Machine code such as `not_found`, `outside_roots`, `too_large`.
    pub code: String,
    pub detail: String,
}

/// One parsed upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub words: Vec<String>,
    pub payload: Bytes,
}

/// Split an upload into header words and payload.
pub fn parse_frame(body: Bytes) -> Result<Frame, FrameError> {
    let limit = body.len().min(MAX_HEADER + 1);
    let newline = body
        .get(..limit)
        .and_then(|head| head.iter().position(|b| *b == b'\n'))
        .ok_or_else(|| bad("no header line"))?;
    let header = std::str::from_utf8(body.get(..newline).unwrap_or_default())
        .map_err(|_| bad("header is not UTF-8"))?;
    let words = header.split_whitespace().map(str::to_string).collect();
    Ok(Frame {
        words,
        payload: body.slice(newline + 1..),
    })
}

impl Frame {
    fn word(&self, i: usize) -> Result<&str, FrameError> {
        self.words
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("header has no field {i}")))
    }

    fn number(&self, i: usize) -> Result<u64, FrameError> {
        let w = self.word(i)?;
        w.parse()
            .map_err(|_| bad(format!("field {i} is not a number: {w:?}")))
    }

    /// Check the kind word and split off a container-side error.
    fn outcome(&self, kind: &str) -> Result<Result<(), ContainerError>, FrameError> {
        if self.word(0)? != kind {
            return Err(bad(format!(
                "expected a {kind} record, got {:?}",
                self.words
            )));
        }
        match self.word(1)? {
            "ok" => Ok(Ok(())),
            "err" => Ok(Err(ContainerError {
                code: self.word(2).unwrap_or("unknown").to_string(),
                detail: self.words.get(3..).unwrap_or_default().join(" "),
            })),
            other => Err(bad(format!("unknown status {other:?}"))),
        }
    }
}

/// One upload to a job's stream ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    /// The command started: its process group (`group`) or lone pid, and the spill directory.
    Start {
        group: bool,
        id: Option<i64>,
        spill_dir: String,
    },
    /// Output bytes of stdout (`stdout: true`) or stderr at `offset`, chunk number `seq`.
    Chunk {
        seq: u64,
        stdout: bool,
        offset: u64,
        bytes: Bytes,
    },
}

impl StreamFrame {
    pub fn parse(frame: &Frame) -> Result<StreamFrame, FrameError> {
        match frame.word(0)? {
            "START" => Ok(StreamFrame::Start {
                group: frame.word(1)? == "g",
                id: frame.word(2)?.parse().ok().filter(|id: &i64| *id > 1),
                spill_dir: frame.words.get(3..).unwrap_or_default().join(" "),
            }),
            "CHUNK" => Ok(StreamFrame::Chunk {
                seq: frame.number(1)?,
                stdout: match frame.word(2)? {
                    "o" => true,
                    "e" => false,
                    other => return Err(bad(format!("unknown stream {other:?}"))),
                },
                offset: frame.number(3)?,
                bytes: frame.payload.clone(),
            }),
            other => Err(bad(format!("unknown stream record {other:?}"))),
        }
    }
}

/// What the exec wrapper reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecReport {
    pub exit_code: i64,
    pub timed_out: bool,
    /// Measured inside the container from `/proc/uptime` (10 ms steps); `None` without it.
    pub duration_ms: Option<u64>,
    pub stdout: Bytes,
    pub stderr: Bytes,
    /// The command left writers behind: output they wrote after the snapshot is missing.
    pub incomplete: bool,
}

impl ExecReport {
    pub fn parse(frame: &Frame) -> Result<ExecReport, FrameError> {
        if frame.word(0)? != "EXEC" {
            return Err(bad(format!(
                "expected an EXEC record, got {:?}",
                frame.words
            )));
        }
        let exit_code: i64 = frame
            .word(1)?
            .parse()
            .map_err(|_| bad("exit code is not a number"))?;
        let timed_out = frame.word(2)? == "1";
        let duration_ms = frame.word(3)?.parse().ok();
        let out_len = usize::try_from(frame.number(4)?).map_err(|_| bad("length"))?;
        let err_len = usize::try_from(frame.number(5)?).map_err(|_| bad("length"))?;
        let incomplete = match frame.word(6)? {
            "0" => false,
            "1" => true,
            other => return Err(bad(format!("incomplete flag is not 0 or 1: {other:?}"))),
        };
        if out_len.checked_add(err_len) != Some(frame.payload.len()) {
            return Err(bad(format!(
                "lengths {out_len}+{err_len} do not match the {} payload bytes",
                frame.payload.len()
            )));
        }
        Ok(ExecReport {
            exit_code,
            timed_out,
            duration_ms,
            stdout: frame.payload.slice(..out_len),
            stderr: frame.payload.slice(out_len..),
            incomplete,
        })
    }
}

/// The bytes of a file the read wrapper uploaded.
pub fn parse_read(frame: &Frame) -> Result<Result<Bytes, ContainerError>, FrameError> {
    Ok(frame.outcome("READ")?.map(|()| frame.payload.clone()))
}

/// The sha256 the write wrapper computed after the rename (`None` without `sha256sum`).
pub fn parse_write(frame: &Frame) -> Result<Result<Option<String>, ContainerError>, FrameError> {
    Ok(frame.outcome("WRITE")?.map(|()| {
        frame
            .words
            .get(2)
            .filter(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
            .map(|s| s.to_ascii_lowercase())
    }))
}

/// One directory entry from the list wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    /// `file`, `directory`, `symlink` or `other`.
    pub kind: String,
    pub size: Option<u64>,
}

/// A directory listing: entries and whether the wrapper stopped at the entry cap.
pub fn parse_list(
    frame: &Frame,
) -> Result<Result<(Vec<ListEntry>, bool), ContainerError>, FrameError> {
    if let Err(e) = frame.outcome("LIST")? {
        return Ok(Err(e));
    }
    let truncated = frame.word(2).unwrap_or("0") == "1";
    let mut entries = Vec::new();
    for record in frame.payload.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let mut fields = record.splitn(3, |b| *b == b'\t');
        let (Some(kind), Some(size), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("a listing record does not have three fields"));
        };
        entries.push(ListEntry {
            name: String::from_utf8_lossy(name).into_owned(),
            kind: String::from_utf8_lossy(kind).into_owned(),
            size: std::str::from_utf8(size)
                .ok()
                .and_then(|s| s.trim().parse().ok()),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Ok((entries, truncated)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(raw: &[u8]) -> Frame {
        parse_frame(Bytes::copy_from_slice(raw)).unwrap()
    }

    #[test]
    fn exec_record_splits_stdout_and_stderr() {
        let f = frame(b"EXEC 3 0 12  6  5 0\nhello\noops\n");
        let r = ExecReport::parse(&f).unwrap();
        assert_eq!(r.exit_code, 3);
        assert!(!r.timed_out);
        assert_eq!(r.duration_ms, Some(12));
        assert_eq!(&r.stdout[..], b"hello\n");
        assert_eq!(&r.stderr[..], b"oops\n");
        assert!(!r.incomplete);
        let f = frame(b"EXEC 124 1 - 0 0 1\n");
        let r = ExecReport::parse(&f).unwrap();
        assert!(r.timed_out && r.duration_ms.is_none() && r.incomplete);
    }

    #[test]
    fn malformed_records_are_refused() {
        assert!(parse_frame(Bytes::from_static(b"no newline")).is_err());
        assert!(ExecReport::parse(&frame(b"EXEC 0 0 1 5 5 0\nshort")).is_err());
        assert!(
            ExecReport::parse(&frame(b"EXEC 0 0 1 0 0\n")).is_err(),
            "no flag"
        );
        assert!(ExecReport::parse(&frame(b"EXEC 0 0 1 0 0 x\n")).is_err());
        assert!(ExecReport::parse(&frame(b"READ ok 1\nx")).is_err());
        assert!(ExecReport::parse(&frame(b"EXEC x 0 1 0 0 0\n")).is_err());
    }

    #[test]
    fn container_errors_and_payloads() {
        let f = frame(b"READ err too_large 99 bytes\n");
        let e = parse_read(&f).unwrap().unwrap_err();
        assert_eq!(e.code, "too_large");
        assert_eq!(e.detail, "99 bytes");
        let f = frame(b"READ ok 3\n\x00\xff\n");
        assert_eq!(&parse_read(&f).unwrap().unwrap()[..], b"\x00\xff\n");
        let sha = "a".repeat(64);
        let f = frame(format!("WRITE ok {sha}\n").as_bytes());
        assert_eq!(parse_write(&f).unwrap().unwrap(), Some(sha));
        let f = frame(b"WRITE ok -\n");
        assert_eq!(parse_write(&f).unwrap().unwrap(), None);
    }

    #[test]
    fn listing_records() {
        let f = frame(b"LIST ok 1\nfile\t5\tb c\0directory\t4096\ta\0symlink\t-\tl\tx\0");
        let (entries, truncated) = parse_list(&f).unwrap().unwrap();
        assert!(truncated);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].name, "a");
        assert_eq!(entries[1].name, "b c");
        assert_eq!(entries[1].size, Some(5));
        assert_eq!(entries[2].name, "l\tx");
        assert_eq!(entries[2].size, None);
    }
}
