// The official TypeScript SDK against a running `kasm-mcp demo`, over Streamable HTTP and
// legacy SSE. Reads MCP_URL, SSE_URL and MCP_TOKEN; prints one JSON line per transport with
// what it saw, and exits non-zero on any failure. Driven by tests/clients/test_typescript_sdk.py.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const { MCP_URL, SSE_URL, MCP_TOKEN } = process.env;
if (!MCP_URL || !SSE_URL || !MCP_TOKEN) {
  console.error("set MCP_URL, SSE_URL and MCP_TOKEN");
  process.exit(2);
}
const headers = { Authorization: `Bearer ${MCP_TOKEN}` };

async function exercise(name, transport) {
  const client = new Client({ name: "kasm-mcp-ts-test", version: "1.0.0" });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    const result = await client.callTool({ name: "get_available_workspaces", arguments: {} });
    // Every kasm-mcp tool returns structuredContent; its text content is written for a model.
    const data = result.structuredContent;
    if (!data) throw new Error(`no structuredContent: ${JSON.stringify(result)}`);
    console.log(
      JSON.stringify({
        transport: name,
        serverName: client.getServerVersion()?.name,
        protocolVersion: transport.protocolVersion ?? null,
        tools: tools.map((t) => t.name),
        isError: result.isError ?? false,
        workspaces: data.workspaces.map((w) => w.friendly_name),
      }),
    );
  } finally {
    await client.close();
  }
}

try {
  await exercise(
    "streamable-http",
    new StreamableHTTPClientTransport(new URL(MCP_URL), { requestInit: { headers } }),
  );
  // The SSE GET goes through eventSourceInit; POSTs through requestInit.
  await exercise(
    "sse",
    new SSEClientTransport(new URL(SSE_URL), {
      requestInit: { headers },
      eventSourceInit: {
        fetch: (url, init) => fetch(url, { ...init, headers: { ...(init?.headers ?? {}), ...headers } }),
      },
    }),
  );
} catch (error) {
  console.error(error);
  process.exit(1);
}
