//! The model-facing view of a Kasm session record (no tokens, no port maps), shared by the
//! session tools and the `kasm://sessions` resources. Its output schema is derived from it.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

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
