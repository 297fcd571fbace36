"""get_session_status with the official Python MCP SDK (FastMCP), for the comparison row of
docs/BENCHMARKS.md. kasm-mcp-load starts it against the same simulator as kasm-mcp and sends
it the same stateless JSON-RPC POSTs on /mcp.

It does what kasm-mcp's tool does for a session whose owner is known: one get_kasm_status
call to Kasm (over one pooled keep-alive HTTP client), then the status view as structured
content. No authentication, audit or policy: a floor for the SDK, not a like-for-like server.

    python bench/fastmcp_status.py PORT   # KASM_API_URL, KASM_API_KEY, KASM_API_SECRET,
                                          # KASM_USER_ID from the environment
"""

import os
import sys

import httpx
from mcp.server.fastmcp import FastMCP

KASM = os.environ["KASM_API_URL"].rstrip("/")
CREDENTIALS = {
    "api_key": os.environ["KASM_API_KEY"],
    "api_key_secret": os.environ["KASM_API_SECRET"],
}
USER_ID = os.environ["KASM_USER_ID"]

mcp = FastMCP(
    "kasm-status-fastmcp",
    host="127.0.0.1",
    port=int(sys.argv[1]),
    stateless_http=True,
    json_response=True,
    log_level="WARNING",
)
_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
        )
    return _client


@mcp.tool()
async def get_session_status(kasm_id: str) -> dict:
    """Show one session's state: status, image, owner and dates (one Kasm call)."""
    response = await client().post(
        f"{KASM}/api/public/get_kasm_status",
        json={**CREDENTIALS, "kasm_id": kasm_id, "user_id": USER_ID, "skip_agent_check": False},
    )
    answer = response.json()
    if answer.get("error_message"):
        raise ValueError(answer["error_message"])
    kasm = answer.get("kasm") or {}
    return {
        "kasm_id": kasm_id,
        "status": kasm.get("operational_status", answer.get("operational_status")),
        "user_id": kasm.get("user_id"),
        "image_id": kasm.get("image_id"),
        "start_date": kasm.get("start_date"),
        "keepalive_date": kasm.get("keepalive_date"),
        "expiration_date": kasm.get("expiration_date"),
        "session_url": answer.get("kasm_url"),
    }


if __name__ == "__main__":
    mcp.run(transport="streamable-http")
