"""Policy end to end (issue 16: roles, cross-principal isolation, images, quotas, lifetimes,
client roots, audit) through the official Python SDK against `kasm-mcp demo --policy FILE`.

Principals (tokens in the policy file): `viewer` (viewer, the simulator's agent user),
`alice` (operator, the agent user), `bob` (operator, another Kasm user). The demo's own token
is an admin. Audit events go to a JSON-lines file that the last assertions read back.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import urllib.request
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError
from pydantic import AnyUrl

from conftest import _start_demo, _stop
from mcp_clients import structured

# demo_process: its fixtures start demos with policies of their own.
pytestmark = [pytest.mark.anyio, pytest.mark.demo_process]

AGENT = "4bbb6998064a4d1ea4685f3cdd05feb4"
OTHER_USER = "0c1d2e3f4a5b4c6d8e9fa0b1c2d3e4f5"
CHROME = "Chrome"
CHROME_ID = "2d1e0c7f9b8a4f3e8d6c5b4a39281706"


def _token(name: str) -> str:
    return f"kmcp_{name}_" + secrets.token_urlsafe(18)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _policy_file(tmp: Path, tokens: dict[str, str], quotas: str) -> tuple[Path, Path]:
    audit = tmp / "audit.jsonl"
    entries = [
        ("viewer", "viewer", AGENT),
        ("alice", "operator", AGENT),
        ("bob", "operator", OTHER_USER),
    ]
    text = "".join(
        f'[[auth.tokens]]\nname = "{n}"\nsha256 = "{_sha(tokens[n])}"\nrole = "{r}"\nkasm_user_id = "{u}"\n\n'
        for n, r, u in entries
    )
    text += '[images]\noperator = ["Terminal", "Ubuntu Jammy"]\nviewer = ["Terminal"]\n\n'
    text += f"[quotas]\n{quotas}\n"
    text += f'[audit]\nsink = "file"\nfile = "{audit}"\n'
    path = tmp / "policy.toml"
    path.write_text(text)
    return path, audit


class Policied:
    def __init__(self, tmp: Path, quotas: str) -> None:
        self.tokens = {n: _token(n) for n in ("viewer", "alice", "bob")}
        policy, self.audit_path = _policy_file(tmp, self.tokens, quotas)
        self.server = _start_demo(tmp, extra_args=["--policy", str(policy)])
        secret = [l for l in self.server.banner_lines if "API secret" in l]
        assert secret, self.server.banner
        self.kasm_secret = secret[0].split()[-1]

    def session(self, who: str, roots: list[str] | None = None):
        token = self.server.token if who == "admin" else self.tokens[who]
        return _open(self.server.mcp_url, token, roots)

    def audit(self) -> list[dict]:
        if not self.audit_path.exists():
            return []
        return [json.loads(l) for l in self.audit_path.read_text().splitlines() if l.strip()]


class _open:
    """An initialized SDK session over Streamable HTTP, optionally declaring roots."""

    def __init__(self, url: str, token: str, roots: list[str] | None) -> None:
        self.url, self.token, self.roots = url, token, roots

    async def __aenter__(self) -> ClientSession:
        self._http = streamablehttp_client(self.url, headers={"Authorization": f"Bearer {self.token}"})
        read, write, _ = await self._http.__aenter__()
        callback = None
        if self.roots is not None:
            roots = self.roots

            async def callback(_ctx):  # noqa: ANN001
                return types.ListRootsResult(roots=[types.Root(uri=AnyUrl(r)) for r in roots])

        self._session = ClientSession(read, write, list_roots_callback=callback)
        session = await self._session.__aenter__()
        await session.initialize()
        return session

    async def __aexit__(self, *exc) -> None:
        await self._session.__aexit__(*exc)
        await self._http.__aexit__(*exc)


async def refused(session: ClientSession, tool: str, arguments: dict) -> str:
    """The refusal text of a call that must not succeed (tool error or JSON-RPC error)."""
    try:
        result = await session.call_tool(tool, arguments)
    except McpError as e:
        return str(e)
    assert result.isError, f"{tool} unexpectedly succeeded: {result}"
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def ok(session: ClientSession, tool: str, arguments: dict) -> dict:
    result = await session.call_tool(tool, arguments)
    assert not result.isError, f"{tool} failed: {result.content}"
    return structured(result)


async def create(session: ClientSession, image: str = "Terminal") -> str:
    return (await ok(session, "create_kasm_session", {"image_name": image}))["kasm_id"]


def _fill(name: str, schema: dict, kasm_id: str):
    if name == "kasm_id":
        return kasm_id
    if schema.get("enum"):
        # An enum value that needs no other argument (desktop_action's `cursor_position`).
        return "cursor_position" if "cursor_position" in schema["enum"] else schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer" or kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "object":
        return {}
    if kind == "array":
        return []
    return {"file_path": "/home/kasm-user/x.txt", "path": "/home/kasm-user", "command": "true"}.get(name, "x")


@pytest.fixture
def policied(tmp_path: Path):
    p = Policied(
        tmp_path,
        "max_sessions = 1\nmax_concurrent_exec = 1\nmax_pending_tickets = 1\n",
    )
    yield p
    _stop(p.server)


async def test_roles_isolation_images_quotas_roots_and_the_audit_trail(policied):
    p = policied
    written_secret = "file-content-" + secrets.token_hex(8)
    async with p.session("alice") as alice, p.session("bob") as bob, p.session("viewer") as viewer:
        # ---- images: hidden and refused, by role
        shown = [w["friendly_name"] for w in (await ok(alice, "get_available_workspaces", {}))["workspaces"]]
        assert sorted(shown) == ["Terminal", "Ubuntu Jammy"], shown
        shown = [w["friendly_name"] for w in (await ok(viewer, "get_available_workspaces", {}))["workspaces"]]
        assert shown == ["Terminal"], shown
        text = await refused(alice, "create_kasm_session", {"image_name": CHROME})
        assert "images.operator" in text and CHROME in text, text
        # Names resolve among the role's images only: errors never list hidden ones, and a
        # name that matches an allowed and a hidden image ("er": Terminal, Chrome's
        # "browser") is not ambiguous.
        text = await refused(alice, "create_kasm_session", {"image_name": "no-such-image"})
        assert "Terminal" in text and CHROME not in text and CHROME_ID not in text, text
        text = await refused(alice, "create_kasm_session", {"image_name": "chrom"})
        assert "images.operator" in text and CHROME_ID not in text, text
        started = await ok(alice, "create_kasm_session", {"image_name": "er"})
        assert started["image_name"] == "Terminal", started
        await ok(alice, "destroy_kasm_session", {"kasm_id": started["kasm_id"]})
        # completion/complete offers the role's images only.
        ref = types.ResourceTemplateReference(type="ref/resource", uri="kasm://workspaces/{image_name}")
        done = await viewer.complete(ref, {"name": "image_name", "value": ""})
        assert done.completion.values == ["Terminal"], done.completion.values

        # ---- session quota (1 per principal, counted by this server)
        mine = await create(alice)
        text = await refused(alice, "create_kasm_session", {"image_name": "Terminal"})
        assert "quotas.max_sessions" in text, text
        theirs = await create(bob)

        # ---- a viewer neither sees nor can call exec/write/destroy
        names = {t.name for t in (await viewer.list_tools()).tools}
        for tool in ("execute_kasm_command", "write_kasm_file", "destroy_kasm_session"):
            assert tool not in names, tool
        for tool, args in (
            ("execute_kasm_command", {"kasm_id": mine, "command": "touch /home/kasm-user/viewer-was-here"}),
            ("write_kasm_file", {"kasm_id": mine, "file_path": "/home/kasm-user/v.txt", "content": "v"}),
            ("destroy_kasm_session", {"kasm_id": mine}),
        ):
            text = await refused(viewer, tool, args)
            assert "operator" in text or "not available" in text or "role" in text, (tool, text)
        status = await ok(alice, "get_session_status", {"kasm_id": mine})
        assert status["status"] == "running", status

        # ---- principal A cannot touch principal B's session: every session-scoped tool
        admin_tools = (await alice.list_tools()).tools
        # Tools that act on a session require its kasm_id; list_commands only filters the
        # caller's own jobs by it (checked below: it shows nothing of B's session).
        scoped = [t for t in admin_tools if "kasm_id" in (t.inputSchema.get("required") or [])]
        assert len(scoped) >= 10, [t.name for t in scoped]
        for tool in scoped:
            props = tool.inputSchema.get("properties") or {}
            args = {n: _fill(n, props[n], theirs) for n in tool.inputSchema.get("required", [])}
            args["kasm_id"] = theirs
            text = await refused(alice, tool.name, args)
            assert "does not exist or is not yours" in text, (tool.name, text)
        listed = await ok(alice, "list_commands", {"kasm_id": theirs})
        assert listed == {"jobs": []}, listed
        for uri in (f"kasm://sessions/{theirs}", f"kasm://sessions/{theirs}/files/home/kasm-user/x.txt"):
            with pytest.raises(McpError) as denied:
                await alice.read_resource(AnyUrl(uri))
            assert "does not exist or is not yours" in denied.value.error.message, (uri, denied.value.error)
        still = await ok(bob, "get_session_status", {"kasm_id": theirs})
        assert still["status"] == "running", still

        # ---- exec and ticket caps: one command (holding one relay transfer) in flight
        async def slow() -> None:
            out = await ok(alice, "execute_kasm_command", {"kasm_id": mine, "command": "sleep 3; echo done"})
            assert out["stdout"].strip() == "done", out

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await anyio.sleep(1.0)
            text = await refused(alice, "execute_kasm_command", {"kasm_id": mine, "command": "true"})
            assert "quotas.max_concurrent_exec" in text, text
            text = await refused(alice, "read_kasm_file", {"kasm_id": mine, "file_path": "/home/kasm-user/x"})
            assert "quotas.max_pending_tickets" in text, text
        # Released: the next command runs.
        out = await ok(
            alice,
            "execute_kasm_command",
            {"kasm_id": mine, "command": "mkdir -p /home/kasm-user/project && echo ok", "explanation": "prepare"},
        )
        assert out["stdout"].strip() == "ok"
        await ok(
            alice, "write_kasm_file", {"kasm_id": mine, "file_path": "/home/kasm-user/w.txt", "content": written_secret}
        )
        text = await refused(alice, "read_kasm_file", {"kasm_id": mine, "file_path": "/etc/shadow"})
        assert "allowed roots" in text, text

    # ---- client roots: a client that declares roots is held to them
    async with p.session("alice", roots=["file:///home/kasm-user/project"]) as rooted:
        text = await refused(rooted, "write_kasm_file", {"kasm_id": mine, "file_path": "/home/kasm-user/w2.txt", "content": "x"})
        assert "outside the roots this MCP client declared" in text, text
        w = await ok(
            rooted, "write_kasm_file", {"kasm_id": mine, "file_path": "/home/kasm-user/project/in.txt", "content": "in"}
        )
        assert w["verified"] is True
        # A root the client narrowed to is a directory, not a file to write.
        text = await refused(rooted, "write_kasm_file", {"kasm_id": mine, "file_path": "/home/kasm-user/project", "content": "x"})
        assert "is an allowed root directory" in text, text
        listing = await ok(rooted, "list_kasm_files", {"kasm_id": mine, "path": "/home/kasm-user/project"})
        assert [e["name"] for e in listing["entries"]] == ["in.txt"]
        text = await refused(rooted, "list_kasm_files", {"kasm_id": mine, "path": "/home/kasm-user"})
        assert "outside the roots this MCP client declared" in text, text
        # The file resource is held to the same roots.
        inside = await rooted.read_resource(AnyUrl(f"kasm://sessions/{mine}/files/home/kasm-user/project/in.txt"))
        assert inside.contents[0].text == "in"
        with pytest.raises(McpError, match="outside the roots this MCP client declared"):
            await rooted.read_resource(AnyUrl(f"kasm://sessions/{mine}/files/home/kasm-user/w.txt"))

    async with p.session("alice") as alice, p.session("bob") as bob:
        await ok(alice, "destroy_kasm_session", {"kasm_id": mine})
        await ok(bob, "destroy_kasm_session", {"kasm_id": theirs})
        # The slot is free again.
        again = await create(alice)
        await ok(alice, "destroy_kasm_session", {"kasm_id": again})

    # ---- the audit trail: every refusal with its rule and reason, no secrets
    events = p.audit()
    denials = [e for e in events if e.get("decision") == "deny"]
    rules = {e.get("rule") for e in denials}
    for rule in (
        "images",
        "quotas.max_sessions",
        "role",
        "session_ownership",
        "quotas.max_concurrent_exec",
        "quotas.max_pending_tickets",
        "path",
        "allowed_roots",
        "client_roots",
    ):
        assert rule in rules, (rule, rules)
    for e in denials:
        assert e.get("reason"), e
        assert e.get("request_id"), e
    assert any(e.get("tool") == "resources/read" and e.get("rule") == "client_roots" for e in denials)
    assert any(e.get("rule") == "path" and "allowed root directory" in e.get("reason", "") for e in denials)
    # A path outside the allowed roots is audited under that rule (as it is counted in metrics).
    assert any(e.get("rule") == "allowed_roots" and "/etc/shadow" in e.get("reason", "") for e in denials)
    ownership = [e for e in denials if e["rule"] == "session_ownership"]
    # The refused resource reads above were refused by the ownership check, and audited so.
    assert any(e.get("tool") == "resources/read" for e in ownership), ownership
    assert all(e["principal"] == "alice" and e["kasm_id"] == theirs for e in ownership)
    # Investigator fields of an allowed exec.
    execs = [e for e in events if e.get("tool") == "execute_kasm_command" and e.get("decision") == "allow"]
    assert any(e.get("explanation") == "prepare" and "mkdir" in e.get("command", "") for e in execs), execs
    assert all(e.get("client_ip") == "127.0.0.1" and e.get("client", "").startswith("mcp") for e in execs), execs
    text = p.audit_path.read_text()
    for secret in (*p.tokens.values(), p.server.token, p.kasm_secret, written_secret):
        assert secret not in text, secret
    # Relay tickets travel only inside relay URLs (`…/relay/<ticket>`, KMCP_URL/KMCP_GET_URL).
    assert "/relay/" not in text and "KMCP_" not in text
    # Nor bare: tickets and their keys are 32 random bytes in base64url (43 characters); no
    # such token appears anywhere in the audit file.
    tokens = re.findall(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", text)
    assert not tokens, tokens
    assert not re.search(r"/relay/[A-Za-z0-9_-]{16,}", p.server.log())


@pytest.fixture
def capped_calls(tmp_path: Path):
    p = Policied(tmp_path, "max_concurrent_calls = 1\n")
    yield p
    _stop(p.server)


async def test_the_concurrent_call_cap(capped_calls):
    p = capped_calls
    async with p.session("alice") as alice:
        kasm_id = await create(alice)
        try:
            async def slow() -> None:
                await ok(alice, "execute_kasm_command", {"kasm_id": kasm_id, "command": "sleep 2"})

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow)
                await anyio.sleep(0.8)
                text = await refused(alice, "get_available_workspaces", {})
                assert "quotas.max_concurrent_calls" in text, text
            # Other principals are not affected by alice's calls.
            async with p.session("bob") as bob:
                await ok(bob, "get_available_workspaces", {})
        finally:
            await ok(alice, "destroy_kasm_session", {"kasm_id": kasm_id})
    assert any(e.get("rule") == "quotas.max_concurrent_calls" for e in p.audit())
    assert any(e.get("event") == "quota" for e in p.audit())


@pytest.fixture
def short_lived(tmp_path: Path):
    p = Policied(tmp_path, "session_idle_timeout_s = 2\nsession_max_lifetime_s = 30\nreaper_interval_s = 1\n")
    yield p
    _stop(p.server)


async def test_the_reaper_destroys_idle_sessions(short_lived):
    p = short_lived
    async with p.session("alice") as alice:
        kasm_id = await create(alice)
        listed = await ok(alice, "list_user_sessions", {})
        assert kasm_id in json.dumps(listed)
        deadline = time.monotonic() + 15
        while kasm_id in json.dumps(await ok(alice, "list_user_sessions", {})):
            assert time.monotonic() < deadline, "the reaper did not destroy the idle session"
            await anyio.sleep(0.5)
    with urllib.request.urlopen(f"{p.server.base_url}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert re.search(r"^kasm_mcp_sessions_reaped_total 1$", metrics, re.M), metrics
    reaped = [e for e in p.audit() if e.get("event") == "reaper"]
    assert reaped and reaped[0]["kasm_id"] == kasm_id and reaped[0]["reason"] == "idle_timeout", reaped


@pytest.fixture
def max_lifetime(tmp_path: Path):
    # The reaper's first look is at start-up, the next an hour later: the session outlives
    # its absolute lifetime, and keepalive must not extend it.
    p = Policied(tmp_path, "session_max_lifetime_s = 2\nreaper_interval_s = 3600\n")
    yield p
    _stop(p.server)


async def test_keepalive_cannot_extend_past_the_absolute_lifetime(max_lifetime):
    p = max_lifetime
    async with p.session("alice") as alice:
        kasm_id = await create(alice)
        try:
            kept = await ok(alice, "keepalive_kasm_session", {"kasm_id": kasm_id})
            assert kept["kasm_id"] == kasm_id
            await anyio.sleep(2.2)
            text = await refused(alice, "keepalive_kasm_session", {"kasm_id": kasm_id})
            assert "quotas.session_max_lifetime_s" in text, text
        finally:
            await ok(alice, "destroy_kasm_session", {"kasm_id": kasm_id})
    assert any(e.get("rule") == "quotas.session_max_lifetime_s" for e in p.audit())
