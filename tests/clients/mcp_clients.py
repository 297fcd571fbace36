"""Helpers that connect the official Python MCP SDK (1.x) to a running server."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client

TRANSPORTS = ["streamable-http", "sse"]


@asynccontextmanager
async def open_session(
    server, transport: str, headers: dict[str, str] | None = None, **session_options
) -> AsyncIterator[ClientSession]:
    """An initialized `ClientSession` over `transport` ("streamable-http" or "sse").
    `session_options` go to `ClientSession` (e.g. `elicitation_callback=`)."""
    headers = server.headers if headers is None else headers
    if transport == "streamable-http":
        async with streamablehttp_client(server.mcp_url, headers=headers) as (read, write, _sid):
            async with ClientSession(read, write, **session_options) as session:
                await session.initialize()
                yield session
    elif transport == "sse":
        async with sse_client(server.sse_url, headers=headers) as (read, write):
            async with ClientSession(read, write, **session_options) as session:
                await session.initialize()
                yield session
    else:
        raise ValueError(f"unknown transport {transport!r}")


def structured(result) -> dict:
    """The structured content of a tool result. Every kasm-mcp tool declares an output schema
    and returns `structuredContent`; its text content is written for a model, not JSON."""
    assert getattr(result, "structuredContent", None) is not None, f"no structuredContent: {result}"
    return result.structuredContent
