//! The desktop tools: `desktop_screenshot`, `desktop_action` and `desktop_windows` see and
//! operate the session's X display (`desktop.display`, `:1` in Kasm images) from inside the
//! session, through the relay's exec path.
//!
//! One constant POSIX sh script (`desktop.sh`) does the work with ImageMagick, `xdotool` and
//! (when a window manager runs) `wmctrl`; every input — coordinates, key names, the text to
//! type — travels in `KD_*` environment variables after being parsed into types here
//! (`keys`), never as script text. `run` sends the script and reads its records, `image`
//! checks a capture's size from its header, `shot` turns it into MCP content.

mod action;
mod image;
mod keys;
mod run;
mod screenshot;
mod shot;
mod windows;

use std::sync::Arc;

use crate::mcp::Tool;
use crate::tools::ToolDeps;

/// The desktop tools, in catalog order.
pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![
        screenshot::tool(deps),
        action::tool(deps),
        windows::tool(deps),
    ]
}
