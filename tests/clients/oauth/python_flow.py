"""The official Python SDK's OAuth client (mcp 1.x `OAuthClientProvider`) driven headless:
discovery from the 401, dynamic registration, authorization code with PKCE and `resource`
(the "browser" is an httpx client that follows the authorization server's redirects with its
cookies), then it lists and calls a tool. Usage: python_flow.py <MCP URL>. Prints one JSON
line (client id, tools, the access token for the caller's no-token-in-the-log check)."""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import parse_qs, urlparse

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

RESOURCE = sys.argv[1]
REDIRECT = "http://127.0.0.1:9/callback/python"


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


authorization: dict[str, str] = {}


async def redirect_handler(url: str) -> None:
    authorization["url"] = url


async def callback_handler() -> tuple[str, str | None]:
    """Follow the redirects like a browser until the redirect URI; return code and state."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
        url = authorization["url"]
        query = parse_qs(urlparse(url).query)
        assert query.get("code_challenge_method") == ["S256"], url
        assert query.get("resource") == [RESOURCE], url
        for _ in range(20):
            response = await http.get(url)
            location = response.headers.get("location")
            assert 300 <= response.status_code < 400 and location, (response.status_code, response.text)
            url = str(httpx.URL(url).join(location))
            if url.startswith(REDIRECT):
                answer = parse_qs(urlparse(url).query)
                assert "error" not in answer, answer
                return answer["code"][0], answer.get("state", [None])[0]
    raise AssertionError("too many redirects")


async def main() -> None:
    storage = MemoryStorage()
    auth = OAuthClientProvider(
        RESOURCE,
        OAuthClientMetadata(
            client_name="kasm-mcp OAuth flow test (python)",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage,
        redirect_handler,
        callback_handler,
    )
    async with streamablehttp_client(RESOURCE, auth=auth) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = sorted(t.name for t in (await session.list_tools()).tools)
            result = await session.call_tool("get_available_workspaces", {})
    assert storage.client is not None and storage.tokens is not None
    print(
        json.dumps(
            {
                "client_id": storage.client.client_id,
                "scope": storage.tokens.scope,
                "tools": tools,
                "is_error": result.isError,
                "access_token": storage.tokens.access_token,
            }
        )
    )


asyncio.run(main())
