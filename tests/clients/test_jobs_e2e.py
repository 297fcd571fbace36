"""Background command jobs end to end: the official Python SDK (mcp 1.x) drives a
`kasm-mcp demo` over /mcp and /sse. Commands really run in the simulator's session
sandboxes; their output streams back through the relay while they run.

In external mode (KASM_MCP_TEST_URL, e.g. scripts/cluster-tests.sh: three replicas behind
nginx round-robin) the tests that need no process of their own run against that server, so
every job is started, polled, listed and killed through whichever replica nginx picks; a
second principal's token comes from KASM_MCP_TEST_OTHER_TOKEN. The tests that need the
demo's own process (its VmRSS, or its `[jobs] yield_after_s = 3` from a --policy file) are
marked `demo_process`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import socket
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from conftest import _start_demo, _stop, external_server
from mcp_clients import TRANSPORTS, open_session, structured

pytestmark = pytest.mark.anyio

AGENT = "4bbb6998064a4d1ea4685f3cdd05feb4"  # the simulator's default Kasm user


@pytest.fixture(scope="module")
def jobs_server(request: pytest.FixtureRequest):
    """The server with a second principal `bob`: the external one (every replica behind the
    load balancer) when KASM_MCP_TEST_URL names one, else the module's own demo."""
    external = external_server()
    if external is None:
        yield request.getfixturevalue("jobs_demo")
        return
    other = os.environ.get("KASM_MCP_TEST_OTHER_TOKEN")
    if not other:
        pytest.fail("KASM_MCP_TEST_URL is set but KASM_MCP_TEST_OTHER_TOKEN (a second principal) is not")
    external.bob_headers = {"Authorization": f"Bearer {other}"}
    yield external


@pytest.fixture(scope="module")
def jobs_demo(tmp_path_factory: pytest.TempPathFactory):
    """A demo whose foreground commands yield after 3 s, with a second principal `bob`."""
    tmp = tmp_path_factory.mktemp("jobs")
    bob = "kmcp_bob_" + secrets.token_urlsafe(18)
    digest = hashlib.sha256(bob.encode()).hexdigest()
    policy = tmp / "jobs.toml"
    policy.write_text(
        f'[[auth.tokens]]\nname = "bob"\nsha256 = "{digest}"\nrole = "operator"\nkasm_user_id = "{AGENT}"\n\n'
        "[jobs]\nyield_after_s = 3\n"
    )
    server = _start_demo(tmp, extra_args=["--policy", str(policy)])
    server.bob_headers = {"Authorization": f"Bearer {bob}"}
    yield server
    _stop(server)


async def call_ok(session, tool: str, arguments: dict, **kwargs) -> dict:
    result = await session.call_tool(tool, arguments, **kwargs)
    assert not result.isError, f"{tool} failed: {result.content}"
    return structured(result)


async def call_err(session, tool: str, arguments: dict) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.isError, f"{tool} unexpectedly succeeded: {result}"
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


@asynccontextmanager
async def kasm_session(session):
    created = await call_ok(session, "create_kasm_session", {"image_name": "Terminal"})
    assert created["status"] == "running", created
    try:
        yield created["kasm_id"]
    finally:
        await session.call_tool("destroy_kasm_session", {"kasm_id": created["kasm_id"]})


async def run(session, kasm_id: str, command: str, **extra) -> dict:
    return await call_ok(session, "execute_kasm_command", {"kasm_id": kasm_id, "command": command, **extra})


async def until_ended(session, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        r = await call_ok(session, "get_command_output", {"job_id": job_id, "wait_s": 5, "tail": 100})
        if not r["running"]:
            return r
        assert time.monotonic() < deadline, r


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_foreground_progress_shows_the_latest_line_before_the_result(demo_server, transport):
    events: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append(f"progress:{message}")

    async with open_session(demo_server, transport) as session:
        async with kasm_session(session) as kasm_id:
            r = await call_ok(
                session,
                "execute_kasm_command",
                {"kasm_id": kasm_id, "command": "sleep 2; echo a; sleep 2; echo b"},
                progress_callback=on_progress,
            )
            events.append("result")
            assert r["stdout"] == "a\nb\n", r
            assert r["exit_code"] == 0
    assert "progress:a" in events, events
    assert events.index("progress:a") < events.index("result"), events


# Needs a server whose yield_after_s is 3 s (the demo's own --policy file).
@pytest.mark.demo_process
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_command_past_yield_after_s_returns_a_job_and_the_rest_later(jobs_demo, transport):
    async with open_session(jobs_demo, transport) as session:
        async with kasm_session(session) as kasm_id:
            started = time.monotonic()
            r = await run(session, kasm_id, "echo first; sleep 6; echo second; exit 5")
            assert time.monotonic() - started < 6, "it yielded"
            assert r["running"] is True, r
            assert r["stdout"] == "first\n", r
            assert "exit_code" not in r, r
            job = r["job_id"]
            done = await until_ended(session, job)
            assert done["state"] == "exited" and done["exit_code"] == 5, done
            rest = await call_ok(session, "get_command_output", {"job_id": job, "since": 6})
            assert rest["stdout"]["text"] == "second\n", rest
            assert rest["stdout"]["next"] == 13, rest


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_background_http_server_is_listed_reachable_and_killed(jobs_server, transport):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with open_session(jobs_server, transport) as session:
        async with kasm_session(session) as kasm_id:
            r = await run(session, kasm_id, f"python3 -m http.server {port} --bind 127.0.0.1", background=True)
            assert r["running"] is True, r
            job = r["job_id"]
            listed = await call_ok(session, "list_commands", {})
            mine = [j for j in listed["jobs"] if j["job_id"] == job]
            assert len(mine) == 1 and mine[0]["state"] == "running", listed
            probe = (
                f"for i in $(seq 50); do c=$(curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/)"
                ' && [ "$c" = 200 ] && break; sleep 0.2; done; echo "$c"'
            )
            reached = await run(session, kasm_id, probe)
            assert reached["stdout"] == "200\n", reached
            killed = await call_ok(session, "kill_command", {"job_id": job, "grace_s": 2})
            assert killed["state"] == "killed", killed
            after = await run(
                session,
                kasm_id,
                f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/; echo; pgrep -f 'http[.]server {port}' || echo gone",
            )
            assert after["stdout"] == "000\ngone\n", after
            # The port is closed from the host too.
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()


# Reads the demo process's own VmRSS.
@pytest.mark.demo_process
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fifty_megabytes_are_all_in_the_spill_file_while_server_memory_stays_bounded(
    jobs_demo, transport
):
    generate = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 50000000"
    pid = jobs_demo.process.pid
    async with open_session(jobs_demo, transport) as session:
        async with kasm_session(session) as kasm_id:
            before = rss_kib(pid)
            r = await run(session, kasm_id, generate, background=True)
            peak = before
            job = r["job_id"]
            deadline = time.monotonic() + 120
            while True:
                peak = max(peak, rss_kib(pid))
                out = await call_ok(session, "get_command_output", {"job_id": job, "tail": 100, "wait_s": 1})
                if not out["running"]:
                    break
                assert time.monotonic() < deadline, out
            after = rss_kib(pid)
            peak = max(peak, after)
            assert out["exit_code"] == 0 and out["stdout"]["total"] == 50_000_000, out
            path = r["stdout_path"]
            sums = await run(session, kasm_id, f"sha256sum < {path}; {generate} | sha256sum; wc -c < {path}")
            lines = sums["stdout"].splitlines()
            assert lines[0] == lines[1] and lines[2].strip() == "50000000", sums
    print(f"\n[{transport}] demo VmRSS before {before} KiB, peak {peak} KiB, after {after} KiB (50 MB of output)")
    assert peak - before < 40 * 1024, (before, peak, after)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_another_principal_can_neither_read_nor_kill_a_job(jobs_server, transport):
    async with open_session(jobs_server, transport) as alice:
        async with kasm_session(alice) as kasm_id:
            r = await run(alice, kasm_id, "sleep 30", background=True)
            job = r["job_id"]
            unknown = "0123456789abcdef0123456789abcdef"
            async with open_session(jobs_server, transport, headers=jobs_server.bob_headers) as bob:
                for tool in ("get_command_output", "kill_command"):
                    theirs = await call_err(bob, tool, {"job_id": job})
                    none = await call_err(bob, tool, {"job_id": unknown})
                    assert theirs.replace(job, "ID") == none.replace(unknown, "ID"), (theirs, none)
                listed = await call_ok(bob, "list_commands", {})
                assert listed["jobs"] == [], listed
            mine = await call_ok(alice, "get_command_output", {"job_id": job})
            assert mine["state"] == "running", mine
            await call_ok(alice, "kill_command", {"job_id": job, "grace_s": 1})


def answered_by(server, tool: str) -> list[float]:
    """How many calls of `tool` each replica answered successfully (one entry per /metrics)."""
    return [
        dataclasses.replace(server, metrics_urls=[url]).metric("kasm_mcp_tool_calls_total", tool=tool, outcome="ok")
        for url in server.metrics_urls
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_background_job_is_polled_listed_and_killed_on_any_replica(jobs_server, transport):
    """Every call on its own request: behind a round-robin load balancer the job is started,
    long-polled, listed and killed by different replicas (Streamable HTTP; over legacy SSE
    every call runs on the replica that holds the stream)."""
    before = answered_by(jobs_server, "get_command_output")
    async with open_session(jobs_server, transport) as session:
        async with kasm_session(session) as kasm_id:
            r = await run(session, kasm_id, "echo early; sleep 3; echo later; sleep 120", background=True)
            job = r["job_id"]
            first = await call_ok(session, "get_command_output", {"job_id": job, "wait_s": 20})
            assert first["stdout"]["text"] == "early\n", first
            # A long-poll past the first line returns when "later" arrives, wherever it lands.
            started = time.monotonic()
            later = await call_ok(
                session, "get_command_output", {"job_id": job, "since": first["stdout"]["next"], "wait_s": 30}
            )
            assert later["stdout"]["text"] == "later\n", later
            assert time.monotonic() - started < 15, "woken by the output, not the 30 s wait"
            for _ in range(4):
                seen = await call_ok(session, "get_command_output", {"job_id": job, "tail": 100})
                assert seen["state"] == "running" and seen["stdout"]["text"] == "early\nlater\n", seen
                listed = await call_ok(session, "list_commands", {"kasm_id": kasm_id})
                assert [j["state"] for j in listed["jobs"] if j["job_id"] == job] == ["running"], listed
            killed = await call_ok(session, "kill_command", {"job_id": job, "grace_s": 1})
            assert killed["state"] == "killed", killed
            after = await call_ok(session, "get_command_output", {"job_id": job})
            assert after["state"] == "killed" and after["running"] is False, after
    grew = [b - a for a, b in zip(before, answered_by(jobs_server, "get_command_output"), strict=True)]
    print(f"\n[{transport}] get_command_output answered per replica: {grew}")
    assert sum(grew) >= 7, grew
    if transport == "streamable-http" and len(grew) > 1:
        assert sum(1 for g in grew if g > 0) >= 2, f"one replica answered every poll: {grew}"
