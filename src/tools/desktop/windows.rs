//! `desktop_windows`: list the session's windows (title, class, geometry in screenshot
//! pixels, focus) and focus or close one, with `wmctrl` when a window manager answers it and
//! `xdotool` otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::kasm::KasmId;
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::Role;
use crate::tools::ToolDeps;
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler, structured};

use super::run::{self, Printed, RawWindow, Screen};

const NAME: &str = "desktop_windows";

/// What to do with the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Operation {
    #[default]
    List,
    Focus,
    Close,
}

/// Arguments of `desktop_windows`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    kasm_id: KasmId,
    /// list (default): the visible windows; focus: raise and focus window_id; close: ask
    /// window_id to close (with a window manager) or kill its client (without one). The list
    /// is returned after every operation.
    #[serde(default)]
    operation: Operation,
    /// The id of a window from the list (for focus and close).
    #[serde(default)]
    window_id: Option<u64>,
}

/// One window.
#[derive(Debug, Serialize, JsonSchema)]
struct Window {
    /// X window id (pass it as window_id).
    id: u64,
    title: String,
    /// WM_CLASS as instance.class, e.g. "xterm.XTerm" (empty when unknown).
    class: String,
    /// Geometry in screenshot pixels.
    x: i64,
    y: i64,
    width: u32,
    height: u32,
    /// Whether the window has the keyboard focus.
    focused: bool,
}

/// Result of `desktop_windows`.
#[derive(Debug, Serialize, JsonSchema)]
struct WindowList {
    kasm_id: KasmId,
    operation: Operation,
    windows: Vec<Window>,
    /// Size of the screenshot space the geometry is given in.
    screen_width: u32,
    screen_height: u32,
}

pub fn tool(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(NAME, Role::Operator)
        .title("List, focus or close desktop windows")
        .description("List the windows on the session's desktop (id, title, class, geometry in screenshot pixels, which has focus), or focus or close one by id. Use it to find an application's window before clicking into it. Needs xdotool (or wmctrl with a window manager) in the image and a relay; one exec in the session.")
        .input_schema(schema::input::<Args>())
        .output_schema(schema::output::<WindowList>())
        .annotations(ToolAnnotations::writes().destructive())
        .build();
    FnTool::shared(spec, deps, handler!(windows))
}

/// `value` (real pixels) in screenshot pixels.
fn scaled(value: i64, scaled_side: u32, real_side: u32) -> i64 {
    if real_side == 0 {
        return value;
    }
    value.saturating_mul(i64::from(scaled_side)) / i64::from(real_side)
}

fn scaled_u32(value: u32, scaled_side: u32, real_side: u32) -> u32 {
    u32::try_from(scaled(i64::from(value), scaled_side, real_side)).unwrap_or(value)
}

fn window(raw: RawWindow, screen: Screen, focus: Option<u64>) -> Window {
    let (sw, sh) = (screen.scaled.width, screen.scaled.height);
    let (w, h) = (screen.real.width, screen.real.height);
    Window {
        id: raw.id,
        focused: focus == Some(raw.id),
        title: raw.title,
        class: raw.class,
        x: scaled(raw.x, sw, w),
        y: scaled(raw.y, sh, h),
        width: scaled_u32(raw.width, sw, w),
        height: scaled_u32(raw.height, sh, h),
    }
}

async fn list(
    deps: &Arc<ToolDeps>,
    ctx: &CallContext,
    session: &crate::tools::access::SessionRef,
) -> Result<Printed, ToolError> {
    let mut env = BTreeMap::new();
    env.insert("KD_OP".to_string(), "list".to_string());
    run::run(deps, ctx, session, env, "listing windows").await
}

async fn windows(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    let op = match (args.operation, args.window_id) {
        (Operation::List, None) => None,
        (Operation::List, Some(_)) => {
            return Err(ToolError::new(
                "window_id applies to operation focus or close, not list",
            ));
        }
        (Operation::Focus, Some(id)) => Some(("focus", id)),
        (Operation::Close, Some(id)) => Some(("close", id)),
        (_, None) => {
            return Err(ToolError::new(
                "focus and close need window_id (from desktop_windows' list)",
            ));
        }
    };
    let session = run::session(&deps, &ctx, &args.kasm_id).await?;
    if let Some((op, id)) = op {
        let mut env = BTreeMap::new();
        env.insert("KD_OP".to_string(), op.to_string());
        env.insert("KD_WID".to_string(), id.to_string());
        run::run(&deps, &ctx, &session, env, "the window operation").await?;
    }
    let printed = list(&deps, &ctx, &session).await?;
    let screen = printed
        .screen
        .ok_or_else(|| ToolError::new("the session did not report its screen size"))?;
    let focus = printed.focus;
    structured(&WindowList {
        kasm_id: session.kasm_id.clone(),
        operation: args.operation,
        screen_width: screen.scaled.width,
        screen_height: screen.scaled.height,
        windows: printed
            .windows
            .into_iter()
            .map(|raw| window(raw, screen, focus))
            .collect(),
    })
}
