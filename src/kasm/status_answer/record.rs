//! The `kasm` object of a `get_kasm_status` answer read in one pass: the `operational_*`
//! fields the status decision reads (unread, as `&RawValue`) and the [`Session`] fields a
//! running session's record needs, together. Reading them apart scanned the record twice more
//! (once for the `operational_*` fields, once more for the `Session`), and the record is most
//! of the answer.
//!
//! The `Session` fields have `Session`'s own types and defaults, so a record that `Session`
//! does not decode does not decode here either: the caller then goes the `Value` way (same
//! results and error messages). `Session`'s struct literal below lists every field, so a
//! field added to `Session` does not compile until it is read here too.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::kasm::{ImageSummary, Session};

/// The fields of a `kasm` object this server reads. Unknown fields are skipped; a duplicate
/// field is an error (as for `Session`).
#[derive(Deserialize)]
pub(super) struct Record<'a> {
    // `Session`'s `kasm_id` is required: its absence only matters when the record is needed.
    #[serde(default)]
    kasm_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    image_id: Option<String>,
    /// Read as text by the decision (a non-string is no status), as `Option<String>` by the
    /// record.
    #[serde(borrow, default)]
    pub(super) operational_status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) operational_message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) operational_progress: Option<&'a RawValue>,
    #[serde(default)]
    container_ip: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    keepalive_date: Option<String>,
    #[serde(default)]
    expiration_date: Option<String>,
    #[serde(default)]
    share_id: Option<String>,
    #[serde(default)]
    image: Option<ImageSummary>,
    #[serde(default)]
    user: Option<Value>,
}

impl Record<'_> {
    /// The record as the [`Session`] `serde_json::from_str::<Session>` gives for the same
    /// object; `None` where that fails (no `kasm_id`, an `operational_status` that is
    /// neither a string nor null).
    pub(super) fn into_session(self) -> Option<Session> {
        let operational_status = match self.operational_status {
            Some(raw) => serde_json::from_str::<Option<String>>(raw.get()).ok()?,
            None => None,
        };
        Some(Session {
            kasm_id: self.kasm_id?,
            user_id: self.user_id,
            image_id: self.image_id,
            operational_status,
            container_ip: self.container_ip,
            hostname: self.hostname,
            start_date: self.start_date,
            keepalive_date: self.keepalive_date,
            expiration_date: self.expiration_date,
            share_id: self.share_id,
            image: self.image,
            user: self.user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kasm::response::tests::R6;

    /// Each record decodes to what `Session`'s own `Deserialize` gives, or fails where it fails.
    #[test]
    fn a_record_is_the_session_serde_decodes() {
        let r6: Value = serde_json::from_str(R6).unwrap();
        let r6_record = r6["kasm"].to_string();
        let records = [
            r6_record.as_str(),
            r#"{"kasm_id":"k"}"#,
            r#"{"kasm_id":"k","operational_status":null,"user":{"username":"u"},"image":null}"#,
            r#"{"kasm_id":"k","operational_status":"running","share_id":"s","hostname":"h\u00e9\"q"}"#,
            r#"{"operational_status":"running"}"#,
            r#"{"kasm_id":5,"operational_status":"running"}"#,
            r#"{"kasm_id":"k","operational_status":7}"#,
            r#"{"kasm_id":"k","image":7}"#,
            r#"{"kasm_id":"k","kasm_id":"j"}"#,
            r#"{"kasm_id":"k","operational_status":"a","operational_status":"b"}"#,
        ];
        for text in records {
            let expected = serde_json::from_str::<Session>(text).ok();
            let got = serde_json::from_str::<Record>(text)
                .ok()
                .and_then(Record::into_session);
            assert_eq!(got, expected, "record: {text}");
        }
        assert!(
            serde_json::from_str::<Record>(&r6_record)
                .ok()
                .and_then(Record::into_session)
                .is_some_and(|s| s.image.is_some() && s.container_ip.is_some())
        );
    }
}
