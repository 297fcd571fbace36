"""MCP tasks (2025-11-25) through the official Python SDK's client (mcp 1.30,
`session.experimental`) against `kasm-mcp demo`, over /mcp and /sse: a tool call made as a task
answers at once, polling reaches `completed` and `tasks/result` returns the tool result; a
cancelled `execute_kasm_command` task kills its command (the demo's simulator runs session
commands as processes of this machine, so the test looks for the process here); over /sse the
end of the task arrives as `notifications/tasks/status`.
"""

from __future__ import annotations

import os
import time

import anyio
import pytest
from mcp import types

from mcp_clients import TRANSPORTS, open_session, structured

pytestmark = pytest.mark.anyio


def processes_with(marker: str) -> list[int]:
    """Processes on this host whose command line contains `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(name))
    return found


async def eventually(what: str, check, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.1)


async def new_session(session) -> str:
    created = await session.call_tool("create_kasm_session", {"image_name": "Terminal"})
    assert not created.isError, created.content
    return structured(created)["kasm_id"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_task_runs_in_the_background_and_tasks_result_returns_the_tool_result(
    demo_server, transport
):
    notes: list[types.ServerNotification] = []

    async def on_message(message) -> None:
        if isinstance(message, types.ServerNotification):
            notes.append(message)

    async with open_session(demo_server, transport, message_handler=on_message) as session:
        caps = session.get_server_capabilities()
        assert caps is not None and caps.tasks is not None, caps
        assert caps.tasks.requests.tools.call is not None
        tools = (await session.list_tools()).tools
        exec_tool = next(t for t in tools if t.name == "execute_kasm_command")
        assert exec_tool.execution is not None and exec_tool.execution.taskSupport == "optional"

        kasm_id = await new_session(session)
        try:
            started = time.monotonic()
            created = await session.experimental.call_tool_as_task(
                "execute_kasm_command",
                {"kasm_id": kasm_id, "command": "sleep 2; echo from-a-task"},
                ttl=120_000,
            )
            assert time.monotonic() - started < 2, "answered before the command ended"
            task_id = created.task.taskId
            assert created.task.status == "working"

            statuses = [s.status async for s in session.experimental.poll_task(task_id)]
            assert statuses[-1] == "completed", statuses
            listed = await session.experimental.list_tasks()
            assert task_id in [t.taskId for t in listed.tasks]

            result = await session.experimental.get_task_result(task_id, types.CallToolResult)
            assert not result.isError
            assert structured(result)["stdout"] == "from-a-task\n"

            if transport == "sse":
                # The legacy SSE connection outlives the call: the end of the task is announced.
                await eventually(
                    "notifications/tasks/status",
                    lambda: any(
                        isinstance(n.root, types.TaskStatusNotification)
                        and n.root.params.taskId == task_id
                        and n.root.params.status == "completed"
                        for n in notes
                    ),
                )
        finally:
            await session.call_tool("destroy_kasm_session", {"kasm_id": kasm_id})


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_an_exec_task_kills_the_command(demo_server, transport):
    async with open_session(demo_server, transport) as session:
        kasm_id = await new_session(session)
        try:
            marker = f"60.{time.time_ns() % 1_000_000_000:09d}"
            created = await session.experimental.call_tool_as_task(
                "execute_kasm_command",
                {"kasm_id": kasm_id, "command": f"sleep {marker}", "timeout_s": 120},
            )
            task_id = created.task.taskId
            await eventually(f"sleep {marker} to start", lambda: processes_with(marker))

            cancelled = await session.experimental.cancel_task(task_id)
            assert cancelled.status == "cancelled"
            await eventually(f"sleep {marker} to be killed", lambda: not processes_with(marker))
            now = await session.experimental.get_task(task_id)
            assert now.status == "cancelled"
        finally:
            await session.call_tool("destroy_kasm_session", {"kasm_id": kasm_id})


def test_typescript_sdk_tasks_over_both_transports(demo_server):
    """The TypeScript SDK's experimental tasks client: a task with its status and result, and
    `cancelTask` killing the command (tests/clients/ts/tasks_test.mjs)."""
    import json
    import subprocess
    from pathlib import Path

    from test_typescript_sdk import _node

    here = Path(__file__).resolve().parent
    env = dict(
        os.environ,
        MCP_URL=demo_server.mcp_url,
        SSE_URL=demo_server.sse_url,
        MCP_TOKEN=demo_server.token,
    )
    run = subprocess.run(
        [_node(), "tasks_test.mjs"],
        cwd=here / "ts",
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    seen = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [s["transport"] for s in seen] == ["streamable-http", "sse"], run.stdout
    for s in seen:
        assert s["seen"][0] == "taskCreated" and s["seen"][-1] == "result", s
        assert s["stdout"] == "ts-task\n", s
        assert s["listed"], s
        assert s["cancelStatus"] == "cancelled" and s["statusAfterCancel"] == "cancelled", s
        assert s["killed"], s


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_task_that_needs_approval_asks_on_the_tasks_result_stream(demo_server, transport):
    """A `confirm` command in a task: the task turns input_required, and `tasks/result` carries
    the approval request (elicitation, tied to the task) to the client; approved, it runs."""
    asked: list[types.ElicitRequestParams] = []

    async def approve(context, params: types.ElicitRequestParams):
        asked.append(params)
        return types.ElicitResult(action="accept", content={"approve": True})

    async with open_session(demo_server, transport, elicitation_callback=approve) as session:
        kasm_id = await new_session(session)
        try:
            created = await session.experimental.call_tool_as_task(
                "execute_kasm_command",
                {"kasm_id": kasm_id, "command": "printf 'echo approved-task' | sh"},
            )
            task_id = created.task.taskId
            statuses = []
            async for status in session.experimental.poll_task(task_id):
                statuses.append(status.status)
                if status.status == "input_required":
                    break
            assert statuses[-1] == "input_required", statuses
            assert not asked, "nothing is asked before tasks/result"

            result = await session.experimental.get_task_result(task_id, types.CallToolResult)
            assert len(asked) == 1, asked
            assert "approved-task" in asked[0].message
            meta = asked[0].meta.model_dump() if asked[0].meta else {}
            assert meta.get("io.modelcontextprotocol/related-task", {}).get("taskId") == task_id, meta
            assert not result.isError, result.content
            assert structured(result)["stdout"] == "approved-task\n"
            assert (await session.experimental.get_task(task_id)).status == "completed"
        finally:
            await session.call_tool("destroy_kasm_session", {"kasm_id": kasm_id})
