"""The tool catalog end to end: the official Python SDK (mcp 1.x) drives `kasm-mcp demo`
over /mcp and /sse. Commands really run in the simulator's session sandboxes and their output
comes back through the relay.

The demo's simulated Kasm allows 3 sessions per user (`demo --max-sessions-per-user`), so
every test destroys the sessions it creates.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from contextlib import asynccontextmanager

import anyio
import pytest

from mcp_clients import TRANSPORTS, open_session, structured

pytestmark = pytest.mark.anyio


async def call_ok(session, tool: str, arguments: dict, **kwargs) -> dict:
    result = await session.call_tool(tool, arguments, **kwargs)
    assert not result.isError, f"{tool} failed: {result.content}"
    return structured(result)


async def call_err(session, tool: str, arguments: dict) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.isError, f"{tool} unexpectedly succeeded: {result}"
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


@asynccontextmanager
async def kasm_session(session, image_name: str = "Terminal", progress=None):
    """A running session, destroyed afterwards."""
    created = await call_ok(
        session, "create_kasm_session", {"image_name": image_name}, progress_callback=progress
    )
    assert created["status"] == "running", created
    try:
        yield created["kasm_id"]
    finally:
        await session.call_tool("destroy_kasm_session", {"kasm_id": created["kasm_id"]})


async def run(session, kasm_id: str, command: str, **extra) -> dict:
    return await call_ok(session, "execute_kasm_command", {"kasm_id": kasm_id, "command": command, **extra})


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_create_by_friendly_name_with_progress_then_exec(demo_server, transport):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with open_session(demo_server, transport) as session:
        async with kasm_session(session, "terminal", progress=on_progress) as kasm_id:
            assert len(seen) >= 2, seen
            assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen), seen
            result = await session.call_tool(
                "execute_kasm_command", {"kasm_id": kasm_id, "command": "echo hello; echo oops >&2; exit 3"}
            )
            # A non-zero exit is a normal result, not a tool error.
            assert not result.isError, result
            r = structured(result)
            assert r["stdout"] == "hello\n"
            assert r["stderr"] == "oops\n"
            assert r["exit_code"] == 3
            assert r["timed_out"] is False
            # The text content is written for a model: exit code, then stdout and stderr as text.
            texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
            assert texts[0].startswith("Exit code: 3 (non-zero"), texts
            assert texts[1:] == ["stdout (6 bytes):\nhello\n", "stderr (5 bytes):\noops\n"], texts


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_timeout_and_output_cap(demo_server, transport):
    async with open_session(demo_server, transport) as session:
        async with kasm_session(session) as kasm_id:
            with anyio.fail_after(30):
                r = await run(session, kasm_id, "echo before; sleep 60", timeout_s=2)
            assert r["timed_out"] is True, r
            assert r["stdout"] == "before\n"
            r = await run(
                session,
                kasm_id,
                "head -c 10485760 /dev/zero | tr '\\0' x",
                max_output_bytes=100000,
            )
            assert r["truncated"] is True
            assert r["exit_code"] == 0
            assert r["stdout"] == "x" * 100000


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_binary_round_trip_awkward_paths_and_exact_command_text(demo_server, transport):
    async with open_session(demo_server, transport) as session:
        async with kasm_session(session) as kasm_id:
            data = os.urandom(1024 * 1024)
            sha = hashlib.sha256(data).hexdigest()
            w = await call_ok(
                session,
                "write_kasm_file",
                {
                    "kasm_id": kasm_id,
                    "file_path": "/home/kasm-user/blobs/random.bin",
                    "content": base64.b64encode(data).decode(),
                    "encoding": "base64",
                },
            )
            assert w["sha256"] == sha and w["verified"] is True
            r = await call_ok(
                session, "read_kasm_file", {"kasm_id": kasm_id, "file_path": "/home/kasm-user/blobs/random.bin"}
            )
            assert r["sha256"] == sha
            assert base64.b64decode(r["content"]) == data

            path = "/home/kasm-user/a dir/it's \"q\" $(x)/naïve 中文 🦀.txt"
            await call_ok(session, "write_kasm_file", {"kasm_id": kasm_id, "file_path": path, "content": "ünïcode\n"})
            r = await call_ok(session, "read_kasm_file", {"kasm_id": kasm_id, "file_path": path})
            assert r["content"] == "ünïcode\n"
            listing = await call_ok(
                session, "list_kasm_files", {"kasm_id": kasm_id, "path": "/home/kasm-user/a dir/it's \"q\" $(x)"}
            )
            assert [e["name"] for e in listing["entries"]] == ["naïve 中文 🦀.txt"]

            command = (
                "printf '%s|' 'single' \"double\" $(echo sub) `echo tick` \\back\\\\slash \"$((6*7))\"\n"
                "echo 'multi\nline' \"tab\there\" é 中文 🦀 \"'\" '\"'; echo \"${UNSET:-default}\""
            )
            local = subprocess.run(["sh", "-c", command], capture_output=True, check=True).stdout.decode()
            r = await run(session, kasm_id, command)
            assert r["stdout"] == local
            r = await run(session, kasm_id, 'printf "%s" "$PAYLOAD"', env={"PAYLOAD": command})
            assert r["stdout"] == command


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_twenty_concurrent_commands_each_get_their_own_output(demo_server, transport):
    async with open_session(demo_server, transport) as session:
        async with (
            kasm_session(session) as first,
            kasm_session(session) as second,
            kasm_session(session) as third,
        ):
            ids = [first, second, third]
            results: dict[int, dict] = {}

            async def one(i: int) -> None:
                results[i] = await run(
                    session,
                    ids[i % 3],
                    f"sleep 0.$(( {i} % 4 )); echo out-{i} $(cat ~/.whoami); echo err-{i} >&2; exit {i % 5}",
                )

            for n, kasm_id in enumerate(ids):
                await run(session, kasm_id, f"echo session-{n} > ~/.whoami")

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for i in range(20):
                        tg.start_soon(one, i)
            for i in range(20):
                assert results[i]["stdout"] == f"out-{i} session-{i % 3}\n", results[i]
                assert results[i]["stderr"] == f"err-{i}\n", results[i]
                assert results[i]["exit_code"] == i % 5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_destroyed_session_and_unknown_argument_get_clear_errors(demo_server, transport):
    async with open_session(demo_server, transport) as session:
        created = await call_ok(session, "create_kasm_session", {"image_name": "Terminal"})
        kasm_id = created["kasm_id"]
        await call_ok(session, "destroy_kasm_session", {"kasm_id": kasm_id})
        for tool, extra in [
            ("get_session_status", {}),
            ("execute_kasm_command", {"command": "true"}),
            ("read_kasm_file", {"file_path": "/home/kasm-user/x"}),
            ("write_kasm_file", {"file_path": "/home/kasm-user/x", "content": "x"}),
            ("list_kasm_files", {"path": "/home/kasm-user"}),
            ("get_session_screenshot", {}),
            ("destroy_kasm_session", {}),
        ]:
            message = await call_err(session, tool, {"kasm_id": kasm_id, **extra})
            assert kasm_id in message and "does not exist" in message, (tool, message)

        message = await call_err(
            session, "execute_kasm_command", {"kasm_id": kasm_id, "command": "true", "cwd": "/tmp"}
        )
        assert "cwd" in message and "working_dir" in message, message


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_exec_user_policy_write_limit_and_session_url_as_the_tools_state_them(demo_server, transport):
    """`user` needs policy.allowed_exec_users (empty in the demo); the write limit the tool states
    is what really arrives (one byte more reaches the tool and gets its message, not HTTP 413);
    the demo's admin token gets the session URL, a login credential."""
    async with open_session(demo_server, transport) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        user_doc = tools["execute_kasm_command"].inputSchema["properties"]["user"]["description"]
        assert "policy.allowed_exec_users" in user_doc, user_doc
        stated = re.search(r"Content is limited to (\d+) bytes", tools["write_kasm_file"].description)
        assert stated, tools["write_kasm_file"].description
        limit = int(stated.group(1))
        assert "login credential" in tools["get_session_status"].description
        async with kasm_session(session) as kasm_id:
            message = await call_err(
                session, "execute_kasm_command", {"kasm_id": kasm_id, "command": "id -u", "user": "root"}
            )
            assert "policy.allowed_exec_users" in message, message

            path = "/home/kasm-user/at-limit.bin"
            for size, ok in [(limit + 1, False), (limit, True)]:
                arguments = {
                    "kasm_id": kasm_id,
                    "file_path": path,
                    "content": base64.b64encode(b"w" * size).decode(),
                    "encoding": "base64",
                }
                if ok:
                    w = await call_ok(session, "write_kasm_file", arguments)
                    assert w["size"] == limit and w["verified"] is True, w
                else:
                    message = await call_err(session, "write_kasm_file", arguments)
                    assert "server.max_body_bytes" in message and str(limit) in message, message

            status = await call_ok(session, "get_session_status", {"kasm_id": kasm_id})
            assert status["session_url"].startswith("http") and "/#/connect/" in status["session_url"], status


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.demo_process  # reads the demo process's peak memory
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_huge_output_keeps_server_memory_bounded(demo_server, transport):
    """50 MB of stdout at the largest allowed cap: the result is capped and the server's peak
    memory grows by far less than the output (it never buffers what the cap drops)."""
    async with open_session(demo_server, transport) as session:
        async with kasm_session(session) as kasm_id:
            before = peak_rss_kib(demo_server.process.pid)
            for _ in range(3):
                r = await run(
                    session,
                    kasm_id,
                    "head -c 52428800 /dev/zero | tr '\\0' y; head -c 52428800 /dev/zero | tr '\\0' z >&2",
                    max_output_bytes=1048576,
                    timeout_s=120,
                )
                assert r["truncated"] is True, r
                assert r["stdout"] == "y" * 1048576
                assert r["stderr"] == "z" * 1048576
            grown_mib = (peak_rss_kib(demo_server.process.pid) - before) / 1024
            print(f"peak RSS of kasm-mcp demo grew by {grown_mib:.1f} MiB over 3 x 100 MB of output")
            assert grown_mib < 32, f"peak RSS grew by {grown_mib:.1f} MiB for 3 x 100 MB of output"
