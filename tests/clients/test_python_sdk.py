"""The official Python SDK (mcp 1.x) against `kasm-mcp demo`, over /mcp and /sse."""

from __future__ import annotations

import httpx
import pytest
from mcp.shared.exceptions import McpError

from mcp_clients import TRANSPORTS, open_session, structured

pytestmark = pytest.mark.anyio

ORIGINAL_TOOLS = {
    "create_kasm_session",
    "destroy_kasm_session",
    "get_session_status",
    "execute_kasm_command",
    "read_kasm_file",
    "write_kasm_file",
    "get_available_workspaces",
    "get_kasm_users",
    "create_kasm_user",
}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_lists_tools_and_calls_one(demo_server, transport):
    async with open_session(demo_server, transport) as session:
        listed = await session.list_tools()
        names = {tool.name for tool in listed.tools}
        missing = ORIGINAL_TOOLS - names
        assert not missing, f"tools missing over {transport}: {missing}"
        for tool in listed.tools:
            assert tool.inputSchema.get("type") == "object", tool.name
            assert tool.annotations is not None, tool.name

        result = await session.call_tool("get_available_workspaces", {})
        assert not result.isError, result
        data = structured(result)
        names = [w["friendly_name"] for w in data["workspaces"]]
        assert data["count"] == len(names) > 0
        assert "Terminal" in names, names


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_ping_and_unknown_tool(demo_server, transport):
    async with open_session(demo_server, transport) as session:
        await session.send_ping()
        # An unknown tool is a protocol error: -32602 naming the tools that exist.
        with pytest.raises(McpError) as caught:
            await session.call_tool("no_such_tool", {})
        assert caught.value.error.code == -32602
        assert "get_available_workspaces" in caught.value.error.message
        # The session stays usable afterwards.
        result = await session.call_tool("get_available_workspaces", {})
        assert not result.isError


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_wrong_token_is_refused(demo_server, transport):
    bad = {"Authorization": "Bearer not-the-token"}
    with pytest.raises(BaseException) as caught:
        async with open_session(demo_server, transport, headers=bad):
            pass
    text = repr(caught.value) + "".join(repr(e) for e in getattr(caught.value, "exceptions", []))
    assert "401" in text or "Unauthorized" in text, text


async def test_raw_http_refusals(demo_server):
    async with httpx.AsyncClient() as http:
        resp = await http.post(demo_server.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert resp.status_code == 401
        # RFC 6750 challenge, without OAuth discovery metadata (no [oauth] in the demo).
        assert resp.headers["www-authenticate"] == 'Bearer realm="kasm-mcp"'
        for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]:
            assert (await http.get(demo_server.base_url + path)).status_code == 404
        resp = await http.post(
            demo_server.mcp_url,
            headers={**demo_server.headers, "Origin": "https://evil.example.com"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
        assert resp.status_code == 403
        resp = await http.get(demo_server.mcp_url, headers=demo_server.headers)
        assert resp.status_code == 405
