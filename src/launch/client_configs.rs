//! Ready-to-paste client configurations for a running server, from one list: the `demo`
//! banner prints it for the live URL and token, and `docs/CLIENTS.md` embeds it for a
//! placeholder URL and token (a test keeps the document equal to [`clients_markdown`]).
//! Shapes follow each client's documentation: Claude Code, Claude Desktop (through the
//! `mcp-remote` stdio bridge), Cline, Cursor, VS Code, Windsurf, the MCP Inspector CLI, the
//! OpenAI Agents SDK and the Python MCP SDK.

use serde_json::{Value, json};

/// One client's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client and the form (`Claude Code (.mcp.json)`).
    pub title: &'static str,
    /// Where it goes or how it is used, one sentence.
    pub note: &'static str,
    /// Code-block language: `sh`, `json` or `python`.
    pub lang: &'static str,
    /// The text to paste.
    pub body: String,
}

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

fn servers(key: &str, entry: Value) -> String {
    pretty(&json!({ key: { "kasm": entry } }))
}

/// Every configuration, for the server at `mcp_url` (Streamable HTTP) and `sse_url` (legacy
/// HTTP+SSE), authenticated with `token` (none: authentication is off).
pub fn client_config_list(mcp_url: &str, sse_url: &str, token: Option<&str>) -> Vec<ClientConfig> {
    let header_arg = token
        .map(|t| format!(" --header \"Authorization: Bearer {t}\""))
        .unwrap_or_default();
    // mcp-remote: the header travels through an environment variable, because some clients
    // split arguments at spaces ("Authorization: Bearer …" would break).
    let mut remote_args = vec![json!("-y"), json!("mcp-remote"), json!(mcp_url)];
    let mut desktop = json!({ "command": "npx" });
    if let Some(t) = token {
        remote_args.push(json!("--header"));
        remote_args.push(json!("Authorization:${KASM_MCP_AUTH}"));
        desktop["env"] = json!({ "KASM_MCP_AUTH": format!("Bearer {t}") });
    }
    if mcp_url.starts_with("http://") {
        remote_args.push(json!("--allow-http"));
    }
    desktop["args"] = Value::Array(remote_args);
    let python_headers = token
        .map(|t| format!(", headers={{\"Authorization\": \"Bearer {t}\"}}"))
        .unwrap_or_default();
    let agents_headers = token
        .map(|t| format!("\"headers\": {{\"Authorization\": \"Bearer {t}\"}}, "))
        .unwrap_or_default();
    vec![
        ClientConfig {
            title: "Claude Code (CLI)",
            note: "Options go before the server name. The second line is the legacy HTTP+SSE form.",
            lang: "sh",
            body: format!(
                "claude mcp add --transport http{header_arg} kasm {mcp_url}\n\
                 claude mcp add --transport sse{header_arg} kasm-sse {sse_url}"
            ),
        },
        ClientConfig {
            title: "Claude Code (.mcp.json)",
            note: "A project-scoped file at the repository root, shared with the team.",
            lang: "json",
            body: servers(
                "mcpServers",
                with_headers(json!({ "type": "http", "url": mcp_url }), token),
            ),
        },
        ClientConfig {
            title: "Claude Desktop (claude_desktop_config.json)",
            note: "Through mcp-remote, a stdio bridge run with npx (Node 18+); Settings → Developer → Edit Config.",
            lang: "json",
            body: servers("mcpServers", desktop),
        },
        ClientConfig {
            title: "Cursor (~/.cursor/mcp.json)",
            note: "Or .cursor/mcp.json in a project.",
            lang: "json",
            body: servers("mcpServers", with_headers(json!({ "url": mcp_url }), token)),
        },
        ClientConfig {
            title: "Cline (cline_mcp_settings.json, Streamable HTTP)",
            note: "MCP Servers → Configure → Configure MCP Servers.",
            lang: "json",
            body: servers(
                "mcpServers",
                with_headers(
                    json!({ "type": "streamableHttp", "url": mcp_url, "disabled": false,
                            "autoApprove": [], "timeout": 60 }),
                    token,
                ),
            ),
        },
        ClientConfig {
            title: "Cline (cline_mcp_settings.json, legacy SSE)",
            note: "For Cline versions without Streamable HTTP.",
            lang: "json",
            body: servers(
                "mcpServers",
                with_headers(
                    json!({ "type": "sse", "url": sse_url, "disabled": false,
                            "autoApprove": [], "timeout": 60 }),
                    token,
                ),
            ),
        },
        ClientConfig {
            title: "VS Code (.vscode/mcp.json)",
            note: "Copilot agent mode; or the user-level mcp.json (MCP: Open User Configuration).",
            lang: "json",
            body: servers(
                "servers",
                with_headers(json!({ "type": "http", "url": mcp_url }), token),
            ),
        },
        ClientConfig {
            title: "Windsurf (~/.codeium/windsurf/mcp_config.json)",
            note: "Cascade → MCP servers → View raw config.",
            lang: "json",
            body: servers(
                "mcpServers",
                with_headers(json!({ "serverUrl": mcp_url }), token),
            ),
        },
        ClientConfig {
            title: "MCP Inspector (CLI)",
            note: "Lists the tools over each transport; the UI starts without --cli.",
            lang: "sh",
            body: format!(
                "npx @modelcontextprotocol/inspector --cli {mcp_url} --transport http{header_arg} --method tools/list\n\
                 npx @modelcontextprotocol/inspector --cli {sse_url} --transport sse{header_arg} --method tools/list"
            ),
        },
        ClientConfig {
            title: "OpenAI Agents SDK (Python)",
            note: "pip install openai-agents; the agent sees the Kasm tools.",
            lang: "python",
            body: format!(
                "from agents import Agent, Runner\n\
                 from agents.mcp import MCPServerStreamableHttp\n\
                 async def main():\n    \
                 async with MCPServerStreamableHttp(\n        \
                 name=\"kasm\", params={{\"url\": \"{mcp_url}\", {agents_headers}\"timeout\": 60}}\n    \
                 ) as kasm:\n        \
                 agent = Agent(name=\"ops\", instructions=\"Use the Kasm tools.\", mcp_servers=[kasm])\n        \
                 print((await Runner.run(agent, \"List the available workspaces\")).final_output)"
            ),
        },
        ClientConfig {
            title: "MCP Python SDK",
            note: "pip install \"mcp>=1.9\"; runs as is with asyncio.run(main()).",
            lang: "python",
            body: format!(
                "from mcp import ClientSession\n\
                 from mcp.client.streamable_http import streamablehttp_client\n\
                 async def main():\n    \
                 async with streamablehttp_client(\"{mcp_url}\"{python_headers}) as (read, write, _):\n        \
                 async with ClientSession(read, write) as session:\n            \
                 await session.initialize()\n            \
                 tools = await session.list_tools()\n            \
                 print([tool.name for tool in tools.tools])"
            ),
        },
    ]
}

/// The text block printed by `demo`: each configuration under its title, commands indented,
/// JSON and Python as they are, a blank line after each (bodies have no blank lines, so a
/// reader can cut the banner at them).
pub fn client_configs(mcp_url: &str, sse_url: &str, token: Option<&str>) -> String {
    let mut out = String::new();
    for config in client_config_list(mcp_url, sse_url, token) {
        out.push_str(config.title);
        out.push_str(":\n");
        for line in config.body.lines() {
            if config.lang == "sh" {
                out.push_str("  ");
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// The configurations as Markdown sections (the generated part of `docs/CLIENTS.md`).
pub fn clients_markdown(mcp_url: &str, sse_url: &str, token: Option<&str>) -> String {
    let mut out = String::new();
    for config in client_config_list(mcp_url, sse_url, token) {
        out.push_str(&format!(
            "### {}\n\n{}\n\n```{}\n{}\n```\n\n",
            config.title, config.note, config.lang, config.body
        ));
    }
    out
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
        assert!(text.contains("\"type\": \"sse\""));
        assert!(text.contains("\"servers\""));
        assert!(text.contains("\"serverUrl\""));
        assert!(text.contains("\"KASM_MCP_AUTH\": \"Bearer tok\""));
        let open = client_configs("http://127.0.0.1:1/mcp", "http://127.0.0.1:1/sse", None);
        assert!(!open.contains("Authorization"), "{open}");
    }

    #[test]
    fn banner_and_document_render_the_same_list() {
        let (mcp, sse) = ("https://mcp.example.com/mcp", "https://mcp.example.com/sse");
        let banner = client_configs(mcp, sse, Some("T"));
        let doc = clients_markdown(mcp, sse, Some("T"));
        for config in client_config_list(mcp, sse, Some("T")) {
            assert!(doc.contains(&config.body), "{}", config.title);
            let indented: String = config
                .body
                .lines()
                .map(|l| {
                    if config.lang == "sh" {
                        format!("  {l}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            assert!(banner.contains(&indented), "{}", config.title);
        }
        assert!(!doc.contains("--allow-http"), "https needs no --allow-http");
        for config in client_config_list(mcp, sse, Some("T")) {
            assert!(
                !config.body.contains("\n\n"),
                "{} has a blank line",
                config.title
            );
        }
    }
}
