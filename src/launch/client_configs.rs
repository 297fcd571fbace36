//! Ready-to-paste client configurations for a running server (shapes from each client's
//! documentation: Claude Code, Cursor, Cline, VS Code, and the MCP Inspector CLI).

use serde_json::{Value, json};

fn headers(token: Option<&str>) -> Option<Value> {
    token.map(|t| json!({ "Authorization": format!("Bearer {t}") }))
}

fn with_headers(mut entry: Value, token: Option<&str>) -> Value {
    if let (Some(h), Some(obj)) = (headers(token), entry.as_object_mut()) {
        obj.insert("headers".into(), h);
    }
    entry
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The text block printed by `demo` (and usable for `serve` docs).
pub fn client_configs(mcp_url: &str, sse_url: &str, token: Option<&str>) -> String {
    let header_arg = token
        .map(|t| format!(" --header \"Authorization: Bearer {t}\""))
        .unwrap_or_default();
    let cursor =
        json!({ "mcpServers": { "kasm": with_headers(json!({ "url": mcp_url }), token) } });
    let cline = json!({ "mcpServers": { "kasm": with_headers(json!({
        "type": "streamableHttp", "url": mcp_url, "disabled": false, "autoApprove": [], "timeout": 60
    }), token) } });
    let vscode = json!({ "servers": { "kasm": with_headers(json!({ "type": "http", "url": mcp_url }), token) } });
    let claude_json = json!({ "mcpServers": { "kasm": with_headers(json!({ "type": "http", "url": mcp_url }), token) } });
    format!(
        "Claude Code:\n  claude mcp add --transport http{header_arg} kasm {mcp_url}\n  \
         (legacy HTTP+SSE: claude mcp add --transport sse{header_arg} kasm {sse_url})\n\n\
         Claude Code project file (.mcp.json):\n{}\n\n\
         Cursor (~/.cursor/mcp.json):\n{}\n\n\
         Cline (cline_mcp_settings.json; use \"type\": \"sse\" with {sse_url} for legacy SSE):\n{}\n\n\
         VS Code (.vscode/mcp.json):\n{}\n\n\
         MCP Inspector:\n  npx @modelcontextprotocol/inspector --cli {mcp_url} --transport http{header_arg} --method tools/list\n",
        pretty(&claude_json),
        pretty(&cursor),
        pretty(&cline),
        pretty(&vscode),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_carry_url_and_token() {
        let text = client_configs(
            "http://127.0.0.1:1/mcp",
            "http://127.0.0.1:1/sse",
            Some("tok"),
        );
        assert!(text.contains("claude mcp add --transport http --header \"Authorization: Bearer tok\" kasm http://127.0.0.1:1/mcp"));
        assert!(text.contains("\"Authorization\": \"Bearer tok\""));
        assert!(text.contains("\"type\": \"streamableHttp\""));
        assert!(text.contains("\"servers\""));
        let open = client_configs("http://127.0.0.1:1/mcp", "http://127.0.0.1:1/sse", None);
        assert!(!open.contains("Authorization"));
    }
}
