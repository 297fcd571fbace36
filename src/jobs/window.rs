//! [`Window`]: the newest bytes of one output stream, at most a fixed number, with their
//! offsets in the whole stream (which the spill file in the session holds completely).

use serde::{Deserialize, Serialize};

/// A contiguous run of a stream's bytes, `[start, start + data.len())`, plus the highest
/// offset seen (`total`). Older bytes fall out at the front; a chunk that starts beyond the
/// end (the wrapper skipped output it could not send in time) restarts the window there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: u64,
    #[serde(with = "serde_bytes_b64")]
    pub data: Vec<u8>,
    pub total: u64,
}

/// What a read of a window returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Offset of the first returned byte.
    pub from: u64,
    pub bytes: Vec<u8>,
    /// Bytes between the requested offset and `from` that are no longer (or never were) in
    /// memory: read them from the spill file.
    pub skipped: u64,
    /// Offset to pass as `since` next time.
    pub next: u64,
}

impl Window {
    fn end(&self) -> u64 {
        self.start.saturating_add(self.data.len() as u64)
    }

    /// Add `bytes` at `offset`, keeping at most `cap` bytes.
    pub fn append(&mut self, offset: u64, bytes: &[u8], cap: usize) {
        let chunk_end = offset.saturating_add(bytes.len() as u64);
        self.total = self.total.max(chunk_end);
        let end = self.end();
        if offset > end {
            self.data.clear();
            self.start = offset;
            self.data.extend_from_slice(bytes);
        } else if chunk_end > end {
            let skip = usize::try_from(end.saturating_sub(offset)).unwrap_or(usize::MAX);
            self.data
                .extend_from_slice(bytes.get(skip..).unwrap_or_default());
        }
        if self.data.len() > cap {
            let drop = self.data.len().saturating_sub(cap);
            self.data.drain(..drop);
            self.start = self.start.saturating_add(drop as u64);
        }
    }

    /// The bytes from `since` (or the last `tail` bytes), at most `max` of them.
    pub fn read(&self, since: Option<u64>, tail: Option<u64>, max: usize) -> Slice {
        let end = self.end();
        let wanted = match (since, tail) {
            (Some(s), _) => s,
            (None, Some(t)) => end.saturating_sub(t),
            (None, None) => 0,
        };
        let from = wanted.clamp(self.start, end.max(self.start));
        let skipped = self.start.saturating_sub(wanted);
        let at = usize::try_from(from.saturating_sub(self.start)).unwrap_or(usize::MAX);
        let bytes: Vec<u8> = self
            .data
            .get(at..)
            .unwrap_or_default()
            .iter()
            .take(max)
            .copied()
            .collect();
        let next = from.saturating_add(bytes.len() as u64);
        Slice {
            from,
            bytes,
            skipped,
            next,
        }
    }

    /// The last line(s) of the window, at most `max` bytes, for a progress message.
    pub fn last_lines(&self, max: usize) -> String {
        let text = String::from_utf8_lossy(&self.data);
        let trimmed = text.trim_end_matches(['\n', '\r']);
        let mut start = trimmed.len().saturating_sub(max);
        while !trimmed.is_char_boundary(start) {
            start += 1;
        }
        let tail = trimmed.get(start..).unwrap_or_default();
        // Whole lines when the tail holds a line break.
        match tail.find('\n') {
            Some(i) if start > 0 => tail.get(i + 1..).unwrap_or(tail).to_string(),
            _ => tail.to_string(),
        }
    }
}

/// Bytes as base64 text in serialized records (compact in JSON and Redis).
pub(super) mod serde_bytes_b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_and_reports_what_fell_out() {
        let mut w = Window::default();
        w.append(0, b"hello ", 8);
        w.append(6, b"world", 8);
        assert_eq!(
            (w.start, w.data.as_slice(), w.total),
            (3, &b"lo world"[..], 11)
        );
        let all = w.read(Some(0), None, 100);
        assert_eq!((all.from, all.skipped, all.next), (3, 3, 11));
        assert_eq!(all.bytes, b"lo world");
        assert_eq!(w.read(None, Some(5), 100).bytes, b"world");
        assert_eq!(w.read(Some(11), None, 100).bytes, b"");
        // A repeated chunk changes nothing; a gap restarts the window.
        w.append(6, b"world", 8);
        assert_eq!(w.data, b"lo world");
        w.append(20, b"!", 8);
        assert_eq!((w.start, w.data.as_slice(), w.total), (20, &b"!"[..], 21));
        let gap = w.read(Some(11), None, 100);
        assert_eq!((gap.from, gap.skipped), (20, 9));
    }

    #[test]
    fn last_lines_are_whole_lines_within_the_limit() {
        let mut w = Window::default();
        w.append(0, b"one\ntwo\nthree\n", 100);
        assert_eq!(w.last_lines(100), "one\ntwo\nthree");
        assert_eq!(w.last_lines(9), "three");
        assert_eq!(w.last_lines(3), "ree");
    }
}
