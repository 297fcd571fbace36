//! Background command jobs as tools: the launch and collection of a streamed command (used by
//! `execute_kasm_command`), and `get_command_output`, `list_commands`, `kill_command`.
//!
//! A job's state lives in the [`crate::jobs::JobStore`]; the collector task here only turns
//! the wrapper's uploads into store writes, and the kill is a Kasm exec built from the
//! record alone, so nothing a caller needs is held only by this process.

mod collect;
pub mod kill;
pub mod launch;
mod list;
mod output;
pub mod text;
mod uploads;

pub use uploads::JobUploads;

use std::sync::Arc;

use super::ToolDeps;
use crate::mcp::Tool;

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![output::tool(deps), list::tool(deps), kill::tool(deps)]
}
