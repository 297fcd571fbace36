//! JSON shapes the simulator sends, following `reference/kasm-api.md` §2 and §11: the
//! "normalized kasm" (R6), session list entries (R9), user records (R15/R16), timestamps.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::images;
use super::state::{GROUPS, Phase, SessionRecord, UserRecord};

/// Python's `str(datetime.utcnow())`: `2024-03-05 22:18:50.063048`.
pub fn kasm_time(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
    t.format(&fmt).unwrap_or_default()
}

/// Now, as Kasm prints `current_time`.
pub fn now() -> String {
    kasm_time(OffsetDateTime::now_utc())
}

/// 32 hex digits → the dashed UUID form Kasm uses in proxy paths.
pub fn dashed(hex32: &str) -> String {
    match uuid::Uuid::try_parse(hex32) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => hex32.to_string(),
    }
}

/// The relative connect URL of a session for a user token.
pub fn connect_url(s: &SessionRecord, token: &str) -> String {
    format!("/#/connect/kasm/{}/{}/{}", s.kasm_id, s.user_id, token)
}

fn port_map(s: &SessionRecord, shared_view: bool) -> Value {
    let uuid = dashed(&s.kasm_id);
    let entry = |svc: &str| json!({"port": 443, "path": format!("desktop/{uuid}/{svc}")});
    if shared_view {
        json!({"vnc": entry("vnc"), "audio": entry("audio")})
    } else {
        json!({"vnc": entry("vnc"), "audio": entry("audio"),
               "audio_input": entry("audio_input"), "uploads": entry("uploads"),
               "webcam": entry("webcam")})
    }
}

fn client_settings(phase: Phase) -> Value {
    if matches!(phase, Phase::Starting { .. }) {
        return json!([]);
    }
    json!({"allow_kasm_audio": true, "allow_kasm_uploads": true, "allow_kasm_downloads": true,
           "allow_kasm_clipboard_down": true, "allow_kasm_clipboard_up": true,
           "allow_kasm_clipboard_seamless": true, "allow_kasm_microphone": false,
           "allow_kasm_sharing": true, "idle_disconnect": 20, "enable_webp": true,
           "kasm_audio_default_on": true, "lock_sharing_video_mode": true,
           "allow_persistent_profile": false, "allow_point_of_presence": false})
}

fn image_summary(s: &SessionRecord) -> Value {
    images::find(&s.image_id)
        .map(|i| i.summary())
        .unwrap_or_else(|| json!({"image_id": s.image_id}))
}

/// The "normalized kasm" (R6) for a session; `hostname` is the request's host.
pub fn normalized_kasm(s: &SessionRecord, hostname: &str) -> Value {
    let (cores, memory) = images::find(&s.image_id)
        .map(|i| (i.cores, i.memory))
        .unwrap_or((2.0, 2_768_000_000));
    json!({
        "kasm_id": s.kasm_id, "user_id": s.user_id, "image_id": s.image_id,
        "operational_status": s.phase.word(),
        "container_id": s.container_id, "container_ip": s.container_ip,
        "server_id": s.server_id, "host": "10.0.0.120", "hostname": hostname, "port": 443,
        "start_date": kasm_time(s.start_date), "keepalive_date": kasm_time(s.keepalive_date),
        "expiration_date": kasm_time(s.expiration_date), "created_date": kasm_time(s.start_date),
        "cores": cores, "memory": memory, "share_id": s.share_id,
        "token": "", "view_only_token": "", "point_of_presence": null,
        "is_persistent_profile": false, "persistent_profile_mode": null,
        "port_map": port_map(s, false), "image": image_summary(s),
        "client_settings": client_settings(s.phase),
    })
}

/// The shared (join) view of a session: fewer ports, the owner's name, no secrets.
pub fn shared_kasm(s: &SessionRecord, owner: &str, hostname: &str) -> Value {
    json!({
        "kasm_id": s.kasm_id, "share_id": s.share_id, "host": "10.0.0.120",
        "hostname": hostname, "port": 443, "port_map": port_map(s, true),
        "image": image_summary(s), "user": {"username": owner},
        "client_settings": client_settings(s.phase), "view_only_token": "",
    })
}

/// An entry of `get_kasms` (R9): the normalized kasm plus `user` and `server`.
pub fn listed_kasm(s: &SessionRecord, username: &str, hostname: &str) -> Value {
    let mut v = normalized_kasm(s, hostname);
    let placed = !matches!(s.phase, Phase::Starting { .. });
    let server = if placed {
        json!({"hostname": "agent1.internal", "port": 443, "provider": "docker", "zone_name": "default"})
    } else {
        json!({"hostname": null, "port": null, "provider": null, "zone_name": "default"})
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("user".into(), json!({"username": username}));
        obj.insert("server".into(), server);
    }
    v
}

/// The short session summary inside a user record.
pub fn user_kasm_summary(s: &SessionRecord) -> Value {
    json!({
        "kasm_id": s.kasm_id, "start_date": kasm_time(s.start_date),
        "keepalive_date": kasm_time(s.keepalive_date),
        "expiration_date": kasm_time(s.expiration_date),
        "server": {"server_id": s.server_id, "hostname": "agent1.internal", "port": 443},
    })
}

fn group_refs(u: &UserRecord) -> Value {
    let groups: Vec<Value> = u
        .groups
        .iter()
        .filter_map(|id| GROUPS.iter().find(|g| g.group_id == id))
        .map(|g| json!({"name": g.name, "group_id": g.group_id}))
        .collect();
    Value::Array(groups)
}

/// A user as `create_user`/`get_user`/`update_user` return it (R15, plus `kasms`/`created`).
pub fn user_record(u: &UserRecord, kasms: Vec<Value>) -> Value {
    json!({
        "user_id": u.user_id, "username": u.username, "first_name": u.first_name,
        "last_name": u.last_name, "phone": u.phone, "organization": u.organization,
        "notes": u.notes, "realm": "local", "locked": u.locked, "disabled": u.disabled,
        "anonymous": u.anonymous, "last_session": u.last_session.map(kasm_time),
        "groups": group_refs(u), "kasms": kasms, "created": kasm_time(u.created),
    })
}

/// A `get_users` entry (R16): `kasms` only with Sessions View, `groups` only with Groups View.
pub fn listed_user(u: &UserRecord, kasms: Option<Vec<Value>>, with_groups: bool) -> Value {
    let mut v = json!({
        "user_id": u.user_id, "username": u.username, "anonymous": u.anonymous,
        "locked": u.locked, "disabled": u.disabled,
        "last_session": u.last_session.map(kasm_time).unwrap_or_else(|| "None".into()),
        "first_name": u.first_name, "last_name": u.last_name, "phone": u.phone,
        "organization": u.organization, "notes": u.notes, "realm": "local", "company": {},
        "created": kasm_time(u.created),
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(kasms) = kasms {
            obj.insert("kasms".into(), Value::Array(kasms));
        }
        if with_groups {
            obj.insert("groups".into(), group_refs(u));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_looks_like_python_str_datetime() {
        let t = OffsetDateTime::from_unix_timestamp(1_709_677_130).unwrap();
        assert_eq!(kasm_time(t), "2024-03-05 22:18:50.000000");
    }

    #[test]
    fn dashes_uuids() {
        assert_eq!(
            dashed("8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f"),
            "8f6c1d2e-3b4a-4c5d-9e0f-1a2b3c4d5e6f"
        );
    }
}
