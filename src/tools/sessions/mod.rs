//! Session tools, one file per job: `lifecycle` (create with image resolution and a progress
//! wait, destroy, pause, resume, keepalive), `status` (one session's state and the session
//! listings), `observation` (screenshot, share link, recordings), `stats` (KasmVNC frame and
//! bottleneck statistics). `args` holds the argument types they share.

mod args;
mod lifecycle;
mod observation;
mod stats;
mod status;

use std::sync::Arc;

use super::ToolDeps;
use crate::mcp::Tool;

pub use status::status_json;

/// The session tools, in catalog order.
pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![
        lifecycle::create(deps),
        lifecycle::destroy(deps),
        status::status(deps),
        status::list_user(deps),
        status::list_all(deps),
        lifecycle::pause(deps),
        lifecycle::resume(deps),
        lifecycle::keepalive(deps),
        observation::screenshot(deps),
        observation::share_link(deps),
        stats::frame_stats(deps),
        stats::bottleneck_stats(deps),
        observation::recordings(deps),
    ]
}
