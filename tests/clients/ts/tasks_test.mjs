// MCP tasks (2025-11-25) through the official TypeScript SDK's experimental tasks client
// (`client.experimental.tasks`), against a running `kasm-mcp demo`, over Streamable HTTP and
// legacy SSE: `callToolStream` sees the tool's `execution.taskSupport`, creates a task, follows
// its status and gets the result; `cancelTask` on a running `sleep` kills it (the demo's
// simulator runs session commands as processes of this machine: /proc is searched for it).
// Reads MCP_URL, SSE_URL and MCP_TOKEN; prints one JSON line per transport; exits non-zero on
// any failure. Driven by tests/clients/test_tasks.py.
import { readdirSync, readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const { MCP_URL, SSE_URL, MCP_TOKEN } = process.env;
if (!MCP_URL || !SSE_URL || !MCP_TOKEN) {
  console.error("set MCP_URL, SSE_URL and MCP_TOKEN");
  process.exit(2);
}
const headers = { Authorization: `Bearer ${MCP_TOKEN}` };

function processesWith(marker) {
  const found = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`).toString().replaceAll("\0", " ");
      if (cmdline.includes(marker)) found.push(Number(name));
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

async function eventually(what, check, withinMs = 30000) {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function exercise(name, transport) {
  const client = new Client({ name: "kasm-mcp-ts-tasks", version: "1.0.0" });
  await client.connect(transport);
  const created = await client.callTool({
    name: "create_kasm_session",
    arguments: { image_name: "Terminal" },
  });
  const kasmId = created.structuredContent.kasm_id;
  try {
    await client.listTools(); // learns execution.taskSupport
    const seen = [];
    let stdout = null;
    let taskId = null;
    for await (const message of client.experimental.tasks.callToolStream({
      name: "execute_kasm_command",
      arguments: { kasm_id: kasmId, command: "sleep 1; echo ts-task" },
    })) {
      seen.push(message.type);
      if (message.type === "taskCreated") taskId = message.task.taskId;
      if (message.type === "result") stdout = message.result.structuredContent.stdout;
      if (message.type === "error") throw message.error;
    }
    const listed = await client.experimental.tasks.listTasks();

    const marker = `60.${String(process.hrtime.bigint() % 1000000000n).padStart(9, "0")}`;
    let cancelId = null;
    for await (const message of client.experimental.tasks.callToolStream({
      name: "execute_kasm_command",
      arguments: { kasm_id: kasmId, command: `sleep ${marker}`, timeout_s: 120 },
    })) {
      if (message.type === "taskCreated") {
        cancelId = message.task.taskId;
        break;
      }
      if (message.type === "error") throw message.error;
    }
    await eventually(`sleep ${marker} to start`, () => processesWith(marker).length > 0);
    const cancelled = await client.experimental.tasks.cancelTask(cancelId);
    await eventually(`sleep ${marker} to be killed`, () => processesWith(marker).length === 0);
    const after = await client.experimental.tasks.getTask(cancelId);
    console.log(
      JSON.stringify({
        transport: name,
        seen,
        stdout,
        listed: listed.tasks.some((t) => t.taskId === taskId),
        cancelStatus: cancelled.status,
        statusAfterCancel: after.status,
        killed: processesWith(marker).length === 0,
      }),
    );
  } finally {
    await client.callTool({ name: "destroy_kasm_session", arguments: { kasm_id: kasmId } });
    await client.close();
  }
}

try {
  await exercise(
    "streamable-http",
    new StreamableHTTPClientTransport(new URL(MCP_URL), { requestInit: { headers } }),
  );
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
