"""A server restart between two calls does not strand a client: the demo derives its session
key from its token, so a restarted `demo --token T` on the same port accepts the session id
the client already holds, and the same `ClientSession` keeps working."""

from __future__ import annotations

import socket

import pytest

from mcp_clients import open_session, structured

# demo_process: restarts the demo process.
pytestmark = [pytest.mark.anyio, pytest.mark.demo_process]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_client_survives_server_restart(demo_factory):
    port = _free_port()
    first = demo_factory.start(port=port)
    async with open_session(first, "streamable-http") as session:
        before = await session.call_tool("get_available_workspaces", {})
        assert not before.isError
        demo_factory.stop(first)
        second = demo_factory.start(port=port, token=first.token)
        assert second.mcp_url == first.mcp_url
        after = await session.call_tool("get_available_workspaces", {})
        assert not after.isError, after
        assert structured(after)["count"] == structured(before)["count"]
