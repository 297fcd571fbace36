//! The fixture resources: `test://static-text`, `test://static-binary`,
//! `test://watched-resource` and the template `test://template/{id}/data`.

use async_trait::async_trait;
use kasm_mcp::mcp::{
    ResourceContents, ResourceError, ResourceInfo, ResourceProvider, ResourceTemplateInfo,
};
use kasm_mcp::policy::Principal;
use serde_json::json;

use crate::media::PNG_BASE64;

pub struct FixtureResources;

fn text_resource(uri: &str, name: &str, description: &str, mime: &str) -> ResourceInfo {
    ResourceInfo {
        uri: uri.into(),
        name: name.into(),
        title: None,
        description: Some(description.into()),
        mime_type: Some(mime.into()),
    }
}

/// `test://template/{id}/data` → the id.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

#[async_trait]
impl ResourceProvider for FixtureResources {
    async fn list(&self, _principal: &Principal) -> Vec<ResourceInfo> {
        vec![
            text_resource(
                "test://static-text",
                "static-text",
                "A static text resource",
                "text/plain",
            ),
            text_resource(
                "test://static-binary",
                "static-binary",
                "A static binary resource (PNG)",
                "image/png",
            ),
            text_resource(
                "test://watched-resource",
                "watched-resource",
                "A resource to subscribe to",
                "text/plain",
            ),
        ]
    }

    async fn templates(&self, _principal: &Principal) -> Vec<ResourceTemplateInfo> {
        vec![ResourceTemplateInfo {
            uri_template: "test://template/{id}/data".into(),
            name: "template-data".into(),
            title: None,
            description: Some("Data for an id".into()),
            mime_type: Some("application/json".into()),
        }]
    }

    async fn read(
        &self,
        _ctx: &kasm_mcp::mcp::CallContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, ResourceError> {
        let text = |mime: &str, text: String| {
            Ok(vec![ResourceContents::Text {
                uri: uri.into(),
                mime_type: Some(mime.into()),
                text,
            }])
        };
        match uri {
            "test://static-text" => text(
                "text/plain",
                "This is the content of the static text resource.".into(),
            ),
            "test://watched-resource" => text("text/plain", "Watched resource content.".into()),
            "test://static-binary" => Ok(vec![ResourceContents::Blob {
                uri: uri.into(),
                mime_type: Some("image/png".into()),
                blob: PNG_BASE64.into(),
            }]),
            other => match template_id(other) {
                Some(id) => text(
                    "application/json",
                    json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") })
                        .to_string(),
                ),
                None => Err(ResourceError::NotFound(other.into())),
            },
        }
    }

    fn supports_subscribe(&self) -> bool {
        true
    }
}
