// The official TypeScript SDK drives a whole Kasm session over Streamable HTTP and legacy SSE:
// create it (with progress notifications), run a command, round-trip 1 MiB of random bytes,
// cancel a long command with an AbortSignal (the SDK sends notifications/cancelled), run one
// more command on the same connection, destroy the session. Reads MCP_URL, SSE_URL and
// MCP_TOKEN; prints one JSON line per transport with what it saw (the Python test
// tests/clients/test_typescript_sdk.py asserts on it and on the server's metrics) and exits
// non-zero on any failure.
import { createHash, randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const { MCP_URL, SSE_URL, MCP_TOKEN } = process.env;
if (!MCP_URL || !SSE_URL || !MCP_TOKEN) {
  console.error("set MCP_URL, SSE_URL and MCP_TOKEN");
  process.exit(2);
}
const headers = { Authorization: `Bearer ${MCP_TOKEN}` };
const LONG = { timeout: 120_000, resetTimeoutOnProgress: true };

function data(result) {
  if (result.isError) {
    throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  }
  return result.structuredContent ?? JSON.parse(result.content[0].text);
}

async function call(client, name, args, options = LONG) {
  return data(await client.callTool({ name, arguments: args }, undefined, options));
}

async function exercise(name, transport) {
  const client = new Client({ name: "kasm-mcp-ts-session-test", version: "1.0.0" });
  await client.connect(transport);
  const seen = { transport: name };
  try {
    const progress = [];
    const created = await call(
      client,
      "create_kasm_session",
      { image_name: "Terminal" },
      { ...LONG, onprogress: (p) => progress.push(p.progress) },
    );
    seen.status = created.status;
    seen.createProgress = progress;
    const kasmId = created.kasm_id;
    try {
      const echoed = await call(client, "execute_kasm_command", {
        kasm_id: kasmId,
        command: `echo ts-${name} $((6*7)); echo to-stderr >&2`,
      });
      seen.stdout = echoed.stdout;
      seen.stderr = echoed.stderr;
      seen.exitCode = echoed.exit_code;

      const bytes = randomBytes(1024 * 1024);
      seen.sentSha256 = createHash("sha256").update(bytes).digest("hex");
      const path = `/home/kasm-user/ts-${name}.bin`;
      const written = await call(client, "write_kasm_file", {
        kasm_id: kasmId,
        file_path: path,
        content: bytes.toString("base64"),
        encoding: "base64",
      });
      seen.writtenSha256 = written.sha256;
      seen.writtenVerified = written.verified;
      const read = await call(client, "read_kasm_file", { kasm_id: kasmId, file_path: path });
      seen.readSha256 = createHash("sha256").update(Buffer.from(read.content, "base64")).digest("hex");

      // Cancel a command while the server waits for its output: abort after the first
      // progress notification (the server is then certainly running the call).
      const abort = new AbortController();
      const started = Date.now();
      const cancelled = client
        .callTool(
          {
            name: "execute_kasm_command",
            arguments: { kasm_id: kasmId, command: "sleep 20; echo not-cancelled", timeout_s: 60 },
          },
          undefined,
          { ...LONG, signal: abort.signal, onprogress: () => abort.abort("the test cancels it") },
        )
        .then(
          (result) => ({ settled: "resolved", result }),
          (error) => ({ settled: "rejected", error: String(error) }),
        );
      const outcome = await cancelled;
      seen.cancel = { settled: outcome.settled, afterMs: Date.now() - started, error: outcome.error };

      const after = await call(client, "execute_kasm_command", {
        kasm_id: kasmId,
        command: "echo still-usable",
      });
      seen.afterCancelStdout = after.stdout;
    } finally {
      const destroyed = await client.callTool(
        { name: "destroy_kasm_session", arguments: { kasm_id: kasmId } },
        undefined,
        LONG,
      );
      seen.destroyed = !destroyed.isError;
    }
    console.log(JSON.stringify(seen));
  } finally {
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
