//! The model-facing view of a Kasm session record (no tokens, no port maps), shared by the
//! session tools and the `kasm://sessions` resources. Its output schema is derived from it.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::kasm::Session;

/// One Kasm session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionView {
    /// The session's kasm_id: pass it to the other session tools.
    pub kasm_id: String,
    /// The Kasm user that owns the session.
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// Kasm's operational status (requested, starting, running, paused, stopped, …).
    pub status: Option<String>,
    pub image_id: Option<String>,
    /// The workspace image's friendly name.
    pub image_name: Option<String>,
    pub docker_image: Option<String>,
    pub hostname: Option<String>,
    pub start_date: Option<String>,
    pub keepalive_date: Option<String>,
    pub expiration_date: Option<String>,
    /// Set when the session was created with sharing enabled.
    pub share_id: Option<String>,
}

impl SessionView {
    pub fn of(session: &Session) -> Self {
        let image = session.image.as_ref();
        SessionView {
            kasm_id: session.kasm_id.clone(),
            user_id: session.user_id.clone(),
            username: session
                .user
                .as_ref()
                .and_then(|u| u.get("username"))
                .and_then(Value::as_str)
                .map(str::to_string),
            status: session.operational_status.clone(),
            image_id: session
                .image_id
                .clone()
                .or_else(|| image.and_then(|i| i.image_id.clone())),
            image_name: image.and_then(|i| i.friendly_name.clone()),
            docker_image: image.and_then(|i| i.name.clone()),
            hostname: session.hostname.clone(),
            start_date: session.start_date.clone(),
            keepalive_date: session.keepalive_date.clone(),
            expiration_date: session.expiration_date.clone(),
            share_id: session.share_id.clone(),
        }
    }

    /// The view as `serde_json::to_value` gives it, built by moving its strings in (no
    /// serializer and no copies: this runs once per `get_session_status` call). A field added
    /// to the struct must be added here too: `every_field_is_in_the_map` checks the count.
    pub fn into_map(self) -> Map<String, Value> {
        let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
        let mut map = Map::new();
        map.insert("kasm_id".into(), Value::String(self.kasm_id));
        map.insert("user_id".into(), text(self.user_id));
        map.insert("username".into(), text(self.username));
        map.insert("status".into(), text(self.status));
        map.insert("image_id".into(), text(self.image_id));
        map.insert("image_name".into(), text(self.image_name));
        map.insert("docker_image".into(), text(self.docker_image));
        map.insert("hostname".into(), text(self.hostname));
        map.insert("start_date".into(), text(self.start_date));
        map.insert("keepalive_date".into(), text(self.keepalive_date));
        map.insert("expiration_date".into(), text(self.expiration_date));
        map.insert("share_id".into(), text(self.share_id));
        map
    }
}

/// A list of sessions (`list_user_sessions`, `list_all_sessions`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
    pub count: usize,
}

impl SessionList {
    pub fn of(sessions: &[Session]) -> Self {
        let sessions: Vec<SessionView> = sessions.iter().map(SessionView::of).collect();
        SessionList {
            count: sessions.len(),
            sessions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> SessionView {
        let s = |v: &str| Some(v.to_string());
        SessionView {
            kasm_id: "k\"é".into(),
            user_id: s("u"),
            username: s("name"),
            status: s("running"),
            image_id: s("i"),
            image_name: s("Terminal"),
            docker_image: s("kasmweb/terminal:1.19.0"),
            hostname: s("h"),
            start_date: s("2026-09-10 12:51:30.000001"),
            keepalive_date: s("k"),
            expiration_date: s("e"),
            share_id: s("sh"),
        }
    }

    #[test]
    fn into_map_is_to_value() {
        let empty = SessionView::of(&Session {
            kasm_id: "k".into(),
            ..Session::default()
        });
        for view in [full(), empty] {
            let expected = serde_json::to_value(&view).unwrap();
            let built = Value::Object(view.into_map());
            // The text too: Map equality ignores key order, the wire does not.
            assert_eq!(built.to_string(), expected.to_string());
            assert_eq!(built, expected);
        }
    }

    #[test]
    fn every_field_is_in_the_map() {
        let Value::Object(fields) = serde_json::to_value(full()).unwrap() else {
            panic!("not an object")
        };
        assert_eq!(full().into_map().len(), fields.len());
    }
}
