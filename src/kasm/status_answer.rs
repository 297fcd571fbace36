//! `get_kasm_status` answers read in place: the fields [`response::decide_status`] needs are
//! taken as borrowed slices of the body (`&RawValue`) and everything else is skipped, instead
//! of building a `serde_json::Value` tree of the whole answer first (the session record's
//! `port_map`, `client_settings`, `image`… — most of the answer, and ≈ 7 % of a status call's
//! CPU as a `Value`). Any body this path cannot read exactly like the `Value` path (not JSON,
//! not an object, a duplicate key, a record that does not decode) goes the `Value` way, so
//! results and error messages are the same either way.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::response::{
    self, Operational, RawResponse, StatusFields, decide_status, percent, progress_of,
};
use super::{KasmError, KasmResult, SessionStatus};

mod record;

use record::Record;

/// The top level of an answer: only the fields the status decision reads.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    error_message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    /// Read in the same pass as the rest of the answer (it was skipped as a `&RawValue`
    /// first and parsed again from that slice: the record is most of the answer).
    #[serde(borrow, default)]
    kasm: Option<Kasm<'a>>,
    #[serde(borrow, default)]
    kasm_url: Option<&'a RawValue>,
    // Not `#[serde(flatten)]` of `OperationalRaw`: that buffers every field through serde's
    // `Content`, the cost this module avoids.
    #[serde(borrow, default)]
    operational_status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    operational_message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    operational_progress: Option<&'a RawValue>,
}

/// The answer's `kasm` field: an object is the session's [`Record`] (one that does not decode
/// fails the whole answer, which then goes the `Value` way); any other JSON value is skipped,
/// as the `Value` path ignores it.
// Lives on the stack for one parse: a box would be one more allocation per call.
#[allow(clippy::large_enum_variant)]
enum Kasm<'a> {
    Record(Record<'a>),
    NotAnObject,
}

impl<'de: 'a, 'a> Deserialize<'de> for Kasm<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KasmVisitor(std::marker::PhantomData))
    }
}

struct KasmVisitor<'a>(std::marker::PhantomData<Kasm<'a>>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for KasmVisitor<'a> {
    type Value = Kasm<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<Kasm<'a>, M::Error> {
        Record::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Kasm::Record)
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Kasm<'a>, S::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Kasm::NotAnObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Kasm<'a>, E> {
        Ok(Kasm::NotAnObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Kasm<'a>, E> {
        Ok(Kasm::NotAnObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Kasm<'a>, E> {
        Ok(Kasm::NotAnObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Kasm<'a>, E> {
        Ok(Kasm::NotAnObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<Kasm<'a>, E> {
        Ok(Kasm::NotAnObject)
    }

    fn visit_unit<E>(self) -> Result<Kasm<'a>, E> {
        Ok(Kasm::NotAnObject)
    }
}

fn operational(
    status: Option<&RawValue>,
    message: Option<&RawValue>,
    progress_raw: Option<&RawValue>,
) -> Operational {
    Operational {
        status: text(status),
        message: text(message),
        progress: progress_raw.and_then(progress),
    }
}

/// A non-empty JSON string (anything else is `None`, as `Value::as_str` + non-empty).
fn text(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
        .filter(|s| !s.is_empty())
}

/// As [`response::error_message`] on one field: null and blank strings are no message, other
/// non-strings are quoted as compact JSON.
fn error_text(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?;
    match serde_json::from_str::<String>(raw.get()) {
        Ok(s) if s.trim().is_empty() => None,
        Ok(s) => Some(s),
        Err(_) => serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()
            .filter(|v| !v.is_null())
            .map(|v| v.to_string()),
    }
}

fn progress(raw: &RawValue) -> Option<u8> {
    match serde_json::from_str::<f64>(raw.get()) {
        Ok(number) => Some(percent(number)),
        // A string holding a number (or anything else: `progress_of` decides).
        Err(_) => serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()
            .as_ref()
            .and_then(progress_of),
    }
}

/// Interpret a `get_kasm_status` response: any shape of a 2xx body, or the error a non-2xx
/// one stands for (same results as `unchecked_json` + `session_status`).
pub fn session_status(
    endpoint: &'static str,
    kasm_id: &str,
    raw: &RawResponse,
) -> KasmResult<SessionStatus> {
    if raw.is_success()
        && let Some(done) = read_in_place(endpoint, kasm_id, &raw.body)
    {
        return done;
    }
    let value = response::unchecked_json(endpoint, raw)?;
    response::session_status(endpoint, kasm_id, &value)
}

/// The answer read without a `Value`; `None` when only the `Value` path reads it exactly.
fn read_in_place(
    endpoint: &'static str,
    kasm_id: &str,
    body: &[u8],
) -> Option<KasmResult<SessionStatus>> {
    // A struct also deserializes from a JSON array; the `Value` path sees no fields there.
    if !body.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    // Read as `str` (one fast pass): serde_json then checks no string again as it reads it.
    // A body that is not UTF-8 goes the `Value` way, which refuses it as not JSON (read as
    // bytes here, the invalid bytes inside a skipped field would pass unseen).
    let answer: Answer = serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
    // The record is read once, for the decision's fields and the running session's
    // `Session` alike (see [`record`]).
    let record = match answer.kasm {
        Some(Kasm::Record(record)) => Some(record),
        Some(Kasm::NotAnObject) | None => None,
    };
    let record_fields = record.as_ref().map(|r| {
        operational(
            r.operational_status,
            r.operational_message,
            r.operational_progress,
        )
    });
    let fields = StatusFields {
        error: error_text(answer.error_message).or_else(|| error_text(answer.error)),
        record: record_fields,
        top: operational(
            answer.operational_status,
            answer.operational_message,
            answer.operational_progress,
        ),
        kasm_url: text(answer.kasm_url),
    };
    let decided = decide_status(endpoint, kasm_id, fields, || {
        record
            .and_then(Record::into_session)
            .ok_or(KasmError::Decode {
                endpoint,
                detail: String::new(),
            })
    });
    match decided {
        // The record did not decode (or no field said anything): the `Value` path words it.
        Err(KasmError::Decode { .. }) => None,
        other => Some(other),
    }
}

#[cfg(test)]
mod tests;
