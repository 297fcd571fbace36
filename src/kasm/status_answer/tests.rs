//! The in-place reading gives exactly what the `Value` path gives, for every answer shape
//! (`reference/kasm-api.md` §5 and §11) and for the odd ones, and is really taken for the
//! shapes Kasm sends.

use bytes::Bytes;

use super::*;
use crate::kasm::response::tests::R6;

const KASM_ID: &str = "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f";
const EP: &str = "get_kasm_status";

fn raw(status: u16, body: &str) -> RawResponse {
    RawResponse {
        status,
        body: Bytes::from(body.to_string()),
    }
}

/// The `Value` path (what `get_kasm_status` did before), as a comparable string.
fn through_value(raw: &RawResponse) -> String {
    let result = response::unchecked_json(EP, raw)
        .and_then(|value| response::session_status(EP, KASM_ID, &value));
    format!("{result:?}")
}

/// Shapes Kasm sends: read in place, same result as the `Value` path.
const IN_PLACE: &[&str] = &[
    R6,
    r#"{"error_message":"This session is currently starting."}"#,
    r#"{"error_message":"This session is currently provisioning.","operational_status":"provisioning",
      "operational_message":"Pulling image","operational_progress":40}"#,
    r#"{"current_time":"x","kasm_url":"/#/connect/kasm/x/y/z",
      "kasm":{"kasm_id":"8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f","operational_status":"starting",
      "operational_message":"Waiting for the container","operational_progress":"75"}}"#,
    r#"{"kasm":{"operational_status":"provisioning","operational_progress":" 12.6 "},
      "operational_message":"from the top","operational_progress":99}"#,
    r#"{"kasm":{"operational_status":"starting"},"operational_progress":250.0}"#,
    r#"{"kasm":{"operational_status":"starting","operational_progress":-3}}"#,
    r#"{"operational_status":"paused"}"#,
    r#"{"operational_status":"Stopped"}"#,
    r#"{"operational_status":"running"}"#,
    r#"{"operational_status":"running","kasm_url":"/#/connect/kasm/a\/b"}"#,
    r#"{"error_message":"This session is currently scheduled to be paused."}"#,
    r#"{"error_message":"Kasm is currently scheduled to be deleted."}"#,
    r#"{"operational_status":"deleting"}"#,
    r#"{"kasm":{"kasm_id":"k","operational_status":"admin_delete_pending"}}"#,
    r#"{"error_message":"Could not find requested Kasm."}"#,
    r#"{"error_message":"Access Denied"}"#,
    r#"{"error_message":null,"error":"Access Denied"}"#,
    r#"{"error_message":"  ","error":{"code":7, "why": "a b"}}"#,
    r#"{"error_message":42}"#,
    r#"{"error_message":"Something \"quoted\" \u00e9"}"#,
    r#"  {"kasm": {"kasm_id":"k","operational_status":"RUNNING","image":{"friendly_name":"T"}}, "kasm_url": ""}"#,
    r#"{"kasm":{},"operational_status":"running"}"#,
    r#"{"kasm":"not an object","operational_status":"paused"}"#,
    // Any other non-object `kasm` is skipped (it is read in the answer's own pass).
    r#"{"kasm":[1,{"kasm_id":"k","operational_status":"running"},[]],"operational_status":"paused"}"#,
    r#"{"kasm":5,"operational_status":"running"}"#,
    r#"{"kasm":-1.5e3,"operational_status":"running"}"#,
    r#"{"kasm":true,"operational_status":"Stopped"}"#,
    r#"{"kasm":"","error_message":"This session is currently starting."}"#,
    r#"{"operational_status":"running","kasm":{"kasm_id":"k","operational_status":"running","port_map":{"vnc":{"port":1,"path":"a"}},"z":[{"q":null}]}}"#,
    r#"{"kasm":null,"error_message":"This session is currently assigned."}"#,
    r#"{"operational_status":7,"error_message":"This session is currently starting."}"#,
    r#"{"operational_status":"weird_state","operational_progress":"abc"}"#,
];

#[test]
fn every_shape_kasm_sends_is_read_in_place_with_the_value_paths_result() {
    for body in IN_PLACE {
        let response = raw(200, body);
        let in_place = read_in_place(EP, KASM_ID, &response.body)
            .unwrap_or_else(|| panic!("not read in place: {body}"));
        assert_eq!(
            format!("{in_place:?}"),
            through_value(&response),
            "body: {body}"
        );
        assert_eq!(
            format!("{:?}", session_status(EP, KASM_ID, &response)),
            through_value(&response)
        );
    }
}

#[test]
fn the_running_record_is_decoded_from_the_answer() {
    let status = session_status(EP, KASM_ID, &raw(200, R6)).unwrap();
    let SessionStatus::Running { session, kasm_url } = status else {
        panic!("{status:?}")
    };
    assert_eq!(session.kasm_id, KASM_ID);
    assert_eq!(session.container_ip.as_deref(), Some("172.18.0.4"));
    assert_eq!(
        session.image.and_then(|i| i.friendly_name).as_deref(),
        Some("Terminal")
    );
    assert!(kasm_url.is_some_and(|u| u.expose().contains("5d6e7f80")));
}

/// Bodies only the `Value` path reads exactly (or that are errors): they go that way, and
/// the result (error messages included) is the same.
#[test]
fn odd_and_failing_bodies_give_the_value_paths_result() {
    let cases: &[(u16, &str)] = &[
        (200, "<html>not json</html>"),
        (200, ""),
        (200, "[]"),
        (200, r#"[null,null,null,null,"running",null,null]"#),
        (200, r#""running""#),
        (200, "{}"),
        (200, r#"{"current_time":"x"}"#),
        (200, r#"{"operational_status":"","operational_message":""}"#),
        (
            200,
            r#"{"operational_status":"paused","operational_status":"running"}"#,
        ),
        (
            200,
            r#"{"kasm":{"kasm_id":5,"operational_status":"running"}}"#,
        ),
        (200, r#"{"kasm":{"operational_status":"running"}}"#),
        (
            200,
            r#"{"kasm":{"kasm_id":"k","kasm_id":"j","operational_status":"running"}}"#,
        ),
        (
            200,
            r#"{"kasm":{"kasm_id":"k","operational_status":"running"},"kasm":null}"#,
        ),
        (
            200,
            r#"{"error_message":"This session is currently starting.","kasm":{"kasm_id":7}}"#,
        ),
        (
            200,
            r#"{"kasm":{"kasm_id":"k","operational_status":"running","image":7}}"#,
        ),
        (200, r#"{"operational_status":"running""#),
        (400, r#"{"error_message":"Could not find requested Kasm."}"#),
        (403, r#"{"error_message":"Access Denied"}"#),
        (500, "oops"),
    ];
    for (status, body) in cases {
        let response = raw(*status, body);
        assert_eq!(
            format!("{:?}", session_status(EP, KASM_ID, &response)),
            through_value(&response),
            "HTTP {status} body: {body}"
        );
    }
    // The array that would fill the struct's fields by position is not read in place.
    assert!(read_in_place(EP, KASM_ID, br#"[null,null,null,null,"running",null,null]"#).is_none());
    // Nor is a record that does not decode (the `Value` path words the error).
    assert!(
        read_in_place(
            EP,
            KASM_ID,
            br#"{"kasm":{"kasm_id":5,"operational_status":"running"}}"#
        )
        .is_none()
    );
}

/// A body that is not UTF-8, even only inside a field nobody reads (at the top or inside the
/// record), is left to the `Value` path, which refuses it as not JSON; the same body with
/// that field valid is read in place.
#[test]
fn invalid_utf8_in_a_skipped_field_goes_the_value_way() {
    for (bad, good) in [
        (
            &b"{\"operational_status\":\"paused\",\"x\":\"\xff\xfe\"}"[..],
            &b"{\"operational_status\":\"paused\",\"x\":\"ok\"}"[..],
        ),
        (
            &b"{\"kasm\":{\"kasm_id\":\"k\",\"operational_status\":\"running\",\"port_map\":{\"a\":\"\xc3\"}}}"[..],
            &b"{\"kasm\":{\"kasm_id\":\"k\",\"operational_status\":\"running\",\"port_map\":{\"a\":\"b\"}}}"[..],
        ),
    ] {
        assert!(std::str::from_utf8(bad).is_err());
        assert!(read_in_place(EP, KASM_ID, bad).is_none());
        assert!(serde_json::from_slice::<serde_json::Value>(bad).is_err());
        assert!(read_in_place(EP, KASM_ID, good).is_some());
    }
}
