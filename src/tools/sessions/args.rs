//! Argument types shared by the session tools.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::kasm::KasmId;

/// Arguments of the tools that take only a session id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    pub kasm_id: KasmId,
}
