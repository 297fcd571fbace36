//! `get_available_workspaces` and image-name resolution for `create_kasm_session`:
//! exact image id, then exact friendly or Docker name, then a unique substring; an ambiguous
//! or unknown name is answered with the candidates.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ToolDeps;
use super::schema::{self, parse_args};
use super::support::{FnTool, ToolError, ToolResult, handler, structured};
use crate::kasm::{Image, ImageId};
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::Role;
use crate::policy::images::{ImageNotAllowed, check_launch, may_launch};

const NAME: &str = "get_available_workspaces";

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![FnTool::shared(spec(), deps, handler!(list))]
}

/// Arguments of `get_available_workspaces`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Also list images an administrator disabled (they cannot be launched).
    #[serde(default)]
    include_disabled: bool,
}

/// One workspace image.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImageView {
    /// Pass it as image_id to create_kasm_session.
    pub image_id: String,
    /// Pass it as image_name to create_kasm_session.
    pub friendly_name: Option<String>,
    /// The Docker image reference, e.g. kasmweb/terminal:1.19.0.
    pub docker_image: Option<String>,
    pub description: Option<String>,
    /// False when an administrator disabled the image (it cannot be launched).
    pub enabled: bool,
    /// CPU cores a session of this image gets.
    pub cores: Option<f64>,
    /// Memory a session of this image gets, in bytes.
    pub memory: Option<i64>,
    pub categories: Vec<String>,
}

impl ImageView {
    pub fn of(image: &Image) -> Self {
        ImageView {
            image_id: image.image_id.clone(),
            friendly_name: image.friendly_name.clone(),
            docker_image: image.name.clone(),
            description: image.description.clone(),
            enabled: image.enabled.unwrap_or(true),
            cores: image.cores,
            memory: image.memory,
            categories: image.categories.clone(),
        }
    }
}

/// The workspace images (`get_available_workspaces`, `kasm://workspaces`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImageList {
    pub workspaces: Vec<ImageView>,
    pub count: usize,
}

impl ImageList {
    /// The images, without disabled ones unless `include_disabled`.
    pub fn of(images: &[Image], include_disabled: bool) -> Self {
        let workspaces: Vec<ImageView> = images
            .iter()
            .filter(|i| include_disabled || i.enabled != Some(false))
            .map(ImageView::of)
            .collect();
        ImageList {
            count: workspaces.len(),
            workspaces,
        }
    }
}

fn spec() -> ToolSpec {
    ToolSpec::builder(NAME, Role::Viewer)
        .title("List workspace images")
        .description("List the workspace images (desktop and app containers) this Kasm offers: image_id, friendly name, Docker image, description, resources and categories. Use it to choose what to pass as image_name or image_id to create_kasm_session. One cheap Kasm call; read-only.")
        .input_schema(schema::input::<Args>())
        .output_schema(schema::output::<ImageList>())
        .annotations(ToolAnnotations::read_only())
        .build()
}

async fn list(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    let images = launchable(&deps, ctx.principal.role, deps.kasm.get_images().await?);
    structured(&ImageList::of(&images, args.include_disabled))
}

/// The images a role may launch (`[images]`, decided by `policy::images`): what
/// `get_available_workspaces` and `kasm://workspaces` show.
pub fn launchable(deps: &ToolDeps, role: Role, images: Vec<Image>) -> Vec<Image> {
    let allowed = deps.images.allowed_for(role);
    images
        .into_iter()
        .filter(|i| may_launch(allowed, &i.image_id, i.friendly_name.as_deref()))
        .collect()
}

/// The image `query` names among those `role` may launch. A query that resolves only among
/// all images (it names a hidden one) is refused by the `[images]` rule, naming the query and
/// never a hidden image; other failures list only launchable images.
pub fn resolve_launchable(
    deps: &ToolDeps,
    role: Role,
    images: Vec<Image>,
    query: &str,
) -> Result<Image, LaunchRefusal> {
    let allowed = launchable(deps, role, images.clone());
    let unresolved = match resolve_image(&allowed, query) {
        Ok(image) => return Ok(image.clone()),
        Err(error) => error,
    };
    let Ok(hidden) = resolve_image(&images, query) else {
        return Err(LaunchRefusal::Unresolved(unresolved));
    };
    match check_launch(
        deps.images.allowed_for(role),
        &role.to_string(),
        &hidden.image_id,
        hidden.friendly_name.as_deref(),
    ) {
        Err(mut refusal) => {
            refusal.image = format!("{:?}", query.trim());
            Err(LaunchRefusal::NotAllowed(refusal))
        }
        Ok(()) => Err(LaunchRefusal::Unresolved(unresolved)),
    }
}

/// Why [`resolve_launchable`] found no image.
#[derive(Debug)]
pub enum LaunchRefusal {
    /// No (or no single) launchable image matches.
    Unresolved(ToolError),
    /// The query names an image the role may not launch (an `images` policy denial).
    NotAllowed(ImageNotAllowed),
}

fn label(image: &Image) -> String {
    format!(
        "{} ({}, image_id {})",
        image.friendly_name.as_deref().unwrap_or("unnamed"),
        image.name.as_deref().unwrap_or("?"),
        image.image_id
    )
}

fn candidates(images: &[&Image]) -> String {
    images
        .iter()
        .map(|i| label(i))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Pick the image `query` names: exact id, exact friendly/Docker name (case-insensitive),
/// then a unique case-insensitive substring of friendly name, Docker name or description.
pub fn resolve_image<'a>(images: &'a [Image], query: &str) -> Result<&'a Image, ToolError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(ToolError::new(
            "image_name is empty: give an image's friendly name, Docker name or image_id (get_available_workspaces lists them)",
        ));
    }
    let usable: Vec<&Image> = images.iter().filter(|i| i.enabled != Some(false)).collect();
    if let Some(image) = ImageId::parse(query)
        .ok()
        .and_then(|id| images.iter().find(|i| id.matches(&i.image_id)))
    {
        return Ok(image);
    }
    let q = query.to_lowercase();
    let eq = |s: &Option<String>| s.as_deref().is_some_and(|s| s.to_lowercase() == q);
    let exact: Vec<&Image> = usable
        .iter()
        .copied()
        .filter(|i| eq(&i.friendly_name) || eq(&i.name))
        .collect();
    match exact.as_slice() {
        [only] => return Ok(only),
        [] => {}
        several => {
            return Err(ToolError::new(format!(
                "image name {query:?} matches {} images: {}. Pass image_id to choose one",
                several.len(),
                candidates(several)
            )));
        }
    }
    let contains = |s: &Option<String>| s.as_deref().is_some_and(|s| s.to_lowercase().contains(&q));
    let partial: Vec<&Image> = usable
        .iter()
        .copied()
        .filter(|i| contains(&i.friendly_name) || contains(&i.name) || contains(&i.description))
        .collect();
    match partial.as_slice() {
        [only] => Ok(only),
        [] => Err(ToolError::new(format!(
            "no enabled workspace image matches {query:?}. Available: {}",
            candidates(&usable)
        ))),
        several => Err(ToolError::new(format!(
            "image name {query:?} is ambiguous ({} matches): {}. Use a more specific name or pass image_id",
            several.len(),
            candidates(several)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, friendly: &str, docker: &str, enabled: bool) -> Image {
        Image {
            image_id: id.into(),
            friendly_name: Some(friendly.into()),
            name: Some(docker.into()),
            enabled: Some(enabled),
            ..Image::default()
        }
    }

    #[test]
    fn resolution_order_and_ambiguity() {
        let images = vec![
            image(
                "11111111111111111111111111111111",
                "Terminal",
                "kasmweb/terminal:1.19.0",
                true,
            ),
            image(
                "22222222222222222222222222222222",
                "Chrome",
                "kasmweb/chrome:1.19.0",
                true,
            ),
            image(
                "33333333333333333333333333333333",
                "Chromium",
                "kasmweb/chromium:1.19.0",
                true,
            ),
            image(
                "44444444444444444444444444444444",
                "Old Desktop",
                "kasmweb/desktop:1.10",
                false,
            ),
        ];
        let id = |q: &str| resolve_image(&images, q).map(|i| i.image_id.clone());
        assert_eq!(id("terminal").unwrap(), "11111111111111111111111111111111");
        assert_eq!(
            id("kasmweb/chrome:1.19.0").unwrap(),
            "22222222222222222222222222222222"
        );
        assert_eq!(
            id("chrome").unwrap(),
            "22222222222222222222222222222222",
            "exact beats substring"
        );
        assert_eq!(
            id("22222222-2222-2222-2222-222222222222").unwrap(),
            "22222222222222222222222222222222"
        );
        assert_eq!(id("term").unwrap(), "11111111111111111111111111111111");
        let err = id("chr").unwrap_err().0;
        assert!(err.contains("Chrome") && err.contains("Chromium"), "{err}");
        let err = id("desktop").unwrap_err().0;
        assert!(err.contains("no enabled workspace image"), "{err}");
        assert!(id("").is_err());
    }
}
