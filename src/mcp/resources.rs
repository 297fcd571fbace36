//! Resources: the provider trait (list, templates, read) and the JSON shapes of
//! `resources/list`, `resources/templates/list` and `resources/read`.
//! Offered (and advertised) only when a provider is registered.

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::mcp::tool::CallContext;
use crate::policy::Principal;

/// A direct resource as listed by `resources/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    pub uri: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

/// A resource template (RFC 6570 `uriTemplate`) as listed by `resources/templates/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTemplateInfo {
    pub uri_template: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

/// One entry of `resources/read`'s `contents`.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceContents {
    Text {
        uri: String,
        mime_type: Option<String>,
        text: String,
    },
    /// `blob` is base64.
    Blob {
        uri: String,
        mime_type: Option<String>,
        blob: String,
    },
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    #[error("resource not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

fn insert_opt(obj: &mut Value, key: &str, value: &Option<String>) {
    if let (Some(v), Some(map)) = (value, obj.as_object_mut()) {
        map.insert(key.into(), json!(v));
    }
}

impl ResourceInfo {
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "uri": self.uri, "name": self.name });
        insert_opt(&mut v, "title", &self.title);
        insert_opt(&mut v, "description", &self.description);
        insert_opt(&mut v, "mimeType", &self.mime_type);
        v
    }
}

impl ResourceTemplateInfo {
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "uriTemplate": self.uri_template, "name": self.name });
        insert_opt(&mut v, "title", &self.title);
        insert_opt(&mut v, "description", &self.description);
        insert_opt(&mut v, "mimeType", &self.mime_type);
        v
    }
}

impl ResourceContents {
    pub fn to_json(&self) -> Value {
        match self {
            ResourceContents::Text {
                uri,
                mime_type,
                text,
            } => {
                let mut v = json!({ "uri": uri, "text": text });
                insert_opt(&mut v, "mimeType", mime_type);
                v
            }
            ResourceContents::Blob {
                uri,
                mime_type,
                blob,
            } => {
                let mut v = json!({ "uri": uri, "blob": blob });
                insert_opt(&mut v, "mimeType", mime_type);
                v
            }
        }
    }
}

/// Supplies resources. Listing order does not matter: the router sorts by URI.
#[async_trait]
pub trait ResourceProvider: Send + Sync {
    async fn list(&self, principal: &Principal) -> Vec<ResourceInfo>;

    async fn templates(&self, _principal: &Principal) -> Vec<ResourceTemplateInfo> {
        Vec::new()
    }

    /// `ctx` carries the principal, a way to ask the client (its roots) and the audit notes.
    async fn read(
        &self,
        ctx: &CallContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, ResourceError>;

    /// Whether `resources/subscribe` is offered (legacy era only). The router tracks the
    /// subscriptions; the provider only says whether it makes sense.
    fn supports_subscribe(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_schema() {
        let r = ResourceInfo {
            uri: "test://a".into(),
            name: "a".into(),
            title: None,
            description: Some("d".into()),
            mime_type: Some("text/plain".into()),
        };
        assert_eq!(
            r.to_json(),
            json!({"uri":"test://a","name":"a","description":"d","mimeType":"text/plain"})
        );
        let t = ResourceTemplateInfo {
            uri_template: "test://t/{id}".into(),
            name: "t".into(),
            title: Some("T".into()),
            description: None,
            mime_type: None,
        };
        assert_eq!(
            t.to_json(),
            json!({"uriTemplate":"test://t/{id}","name":"t","title":"T"})
        );
        let b = ResourceContents::Blob {
            uri: "u".into(),
            mime_type: None,
            blob: "AA==".into(),
        };
        assert_eq!(b.to_json(), json!({"uri":"u","blob":"AA=="}));
    }
}
