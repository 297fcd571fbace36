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

/// The fields of a [`SessionView`], borrowed from the record: what [`SessionView::of`] copies
/// (the router's `get_session_status` call writes them as bytes without copying them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFields<'a> {
    pub kasm_id: &'a str,
    pub user_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub status: Option<&'a str>,
    pub image_id: Option<&'a str>,
    pub image_name: Option<&'a str>,
    pub docker_image: Option<&'a str>,
    pub hostname: Option<&'a str>,
    pub start_date: Option<&'a str>,
    pub keepalive_date: Option<&'a str>,
    pub expiration_date: Option<&'a str>,
    pub share_id: Option<&'a str>,
}

impl<'a> SessionFields<'a> {
    pub fn of(session: &'a Session) -> Self {
        let image = session.image.as_ref();
        SessionFields {
            kasm_id: &session.kasm_id,
            user_id: session.user_id.as_deref(),
            username: session
                .user
                .as_ref()
                .and_then(|u| u.get("username"))
                .and_then(Value::as_str),
            status: session.operational_status.as_deref(),
            image_id: session
                .image_id
                .as_deref()
                .or_else(|| image.and_then(|i| i.image_id.as_deref())),
            image_name: image.and_then(|i| i.friendly_name.as_deref()),
            docker_image: image.and_then(|i| i.name.as_deref()),
            hostname: session.hostname.as_deref(),
            start_date: session.start_date.as_deref(),
            keepalive_date: session.keepalive_date.as_deref(),
            expiration_date: session.expiration_date.as_deref(),
            share_id: session.share_id.as_deref(),
        }
    }

    /// The owned view.
    pub fn to_view(self) -> SessionView {
        let own = |v: Option<&str>| v.map(str::to_string);
        SessionView {
            kasm_id: self.kasm_id.to_string(),
            user_id: own(self.user_id),
            username: own(self.username),
            status: own(self.status),
            image_id: own(self.image_id),
            image_name: own(self.image_name),
            docker_image: own(self.docker_image),
            hostname: own(self.hostname),
            start_date: own(self.start_date),
            keepalive_date: own(self.keepalive_date),
            expiration_date: own(self.expiration_date),
            share_id: own(self.share_id),
        }
    }
}

impl SessionView {
    pub fn of(session: &Session) -> Self {
        SessionFields::of(session).to_view()
    }

    /// The view's fields, borrowed.
    #[cfg(test)]
    pub fn fields(&self) -> SessionFields<'_> {
        SessionFields {
            kasm_id: &self.kasm_id,
            user_id: self.user_id.as_deref(),
            username: self.username.as_deref(),
            status: self.status.as_deref(),
            image_id: self.image_id.as_deref(),
            image_name: self.image_name.as_deref(),
            docker_image: self.docker_image.as_deref(),
            hostname: self.hostname.as_deref(),
            start_date: self.start_date.as_deref(),
            keepalive_date: self.keepalive_date.as_deref(),
            expiration_date: self.expiration_date.as_deref(),
            share_id: self.share_id.as_deref(),
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

    /// Borrowing the fields and copying them gives the view `of` gave before it went through
    /// them (each field from its own place, the image's id only when the record has none).
    #[test]
    fn the_borrowed_fields_are_the_view() {
        let image = |id: Option<&str>| crate::kasm::ImageSummary {
            image_id: id.map(str::to_string),
            friendly_name: Some("Terminal".into()),
            name: Some("kasmweb/terminal:1.19.0".into()),
        };
        let s = |v: &str| Some(v.to_string());
        let records = [
            Session {
                kasm_id: "k".into(),
                ..Session::default()
            },
            Session {
                kasm_id: "k2".into(),
                user_id: s("u"),
                image_id: s("record-image"),
                operational_status: s("running"),
                hostname: s("h"),
                start_date: s("sd"),
                keepalive_date: s("kd"),
                expiration_date: s("ed"),
                share_id: s("sh"),
                image: Some(image(Some("summary-image"))),
                user: Some(serde_json::json!({"username": "name"})),
                ..Session::default()
            },
            Session {
                kasm_id: "k3".into(),
                image: Some(image(Some("summary-image"))),
                user: Some(serde_json::json!({"username": 7})),
                ..Session::default()
            },
        ];
        let expected = [
            serde_json::json!({"kasm_id": "k", "user_id": null, "username": null, "status": null,
                "image_id": null, "image_name": null, "docker_image": null, "hostname": null,
                "start_date": null, "keepalive_date": null, "expiration_date": null, "share_id": null}),
            serde_json::json!({"kasm_id": "k2", "user_id": "u", "username": "name", "status": "running",
                "image_id": "record-image", "image_name": "Terminal", "docker_image": "kasmweb/terminal:1.19.0",
                "hostname": "h", "start_date": "sd", "keepalive_date": "kd", "expiration_date": "ed",
                "share_id": "sh"}),
            serde_json::json!({"kasm_id": "k3", "user_id": null, "username": null, "status": null,
                "image_id": "summary-image", "image_name": "Terminal",
                "docker_image": "kasmweb/terminal:1.19.0", "hostname": null, "start_date": null,
                "keepalive_date": null, "expiration_date": null, "share_id": null}),
        ];
        for (record, expected) in records.iter().zip(expected) {
            let view = SessionView::of(record);
            assert_eq!(serde_json::to_value(&view).unwrap(), expected);
            assert_eq!(view.fields(), SessionFields::of(record));
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
