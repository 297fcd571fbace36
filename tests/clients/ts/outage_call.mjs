// The official TypeScript SDK calling one tool through Streamable HTTP while the cluster's
// Redis is down: prints one JSON line with what the SDK surfaced (`error` is the text of what
// `callTool` threw, or null; `text` the tool result's text when it returned). Reads MCP_URL,
// MCP_TOKEN and KASM_ID. Driven by tests/cluster/harness.py (the Redis phase).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const { MCP_URL, MCP_TOKEN, KASM_ID } = process.env;
if (!MCP_URL || !MCP_TOKEN || !KASM_ID) {
  console.error("set MCP_URL, MCP_TOKEN and KASM_ID");
  process.exit(2);
}
const headers = { Authorization: `Bearer ${MCP_TOKEN}` };
const started = Date.now();
const client = new Client({ name: "kasm-mcp-ts-outage", version: "1.0.0" });
let seen = { error: null, text: null, isError: null };
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(MCP_URL), { requestInit: { headers } }));
  const result = await client.callTool(
    { name: "execute_kasm_command", arguments: { kasm_id: KASM_ID, command: "echo during-outage", timeout_s: 10 } },
    undefined,
    { timeout: 25000 },
  );
  seen = {
    error: null,
    isError: result.isError ?? false,
    text: (result.content ?? []).map((c) => c.text ?? "").join(" "),
  };
} catch (error) {
  seen.error = String(error?.message ?? error);
} finally {
  await client.close().catch(() => {});
}
console.log(JSON.stringify({ ...seen, seconds: (Date.now() - started) / 1000 }));
