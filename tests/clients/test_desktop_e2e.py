"""Desktop control end to end: the official Python SDK drives `kasm-mcp demo`, whose simulated
sessions each get a real X display (Xvfb, 1600x900 here) with an xterm in it. Screenshots are
decoded with ImageMagick (a real decoder), typing must create a file in the session, and
coordinates given in the scaled 1280x720 space must land on the real display where the
mapping says (checked independently with xdotool through execute_kasm_command).

Needs Xvfb, xdotool, xterm and ImageMagick (scripts/setup-test-deps.sh installs them).
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import McpError

from conftest import _start_demo, _stop
from mcp_clients import TRANSPORTS, open_session, structured
from test_tools_e2e import call_err, call_ok, kasm_session, run

# demo_process: its fixtures start demos and servers of their own.
pytestmark = [pytest.mark.anyio, pytest.mark.demo_process]

REAL = (1600, 900)
SCALED = (1280, 720)
TYPED = "echo typed-by-agent > ~/typed.txt"


@pytest.fixture(scope="module")
def desktop_demo(tmp_path_factory: pytest.TempPathFactory):
    """A demo whose sessions have 1600x900 displays, logging at debug level (so the check
    that the typed text appears in no log line covers every line kasm-mcp writes)."""
    server = _start_demo(
        tmp_path_factory.mktemp("desktop"),
        extra_args=["--display-size", f"{REAL[0]}x{REAL[1]}"],
        rust_log="debug,hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info",
    )
    yield server
    _stop(server)


@pytest.fixture(scope="module")
def headless_demo(tmp_path_factory: pytest.TempPathFactory):
    """A demo whose sessions have no display (--no-display)."""
    server = _start_demo(tmp_path_factory.mktemp("headless"), extra_args=["--no-display"])
    yield server
    _stop(server)


def magick(*args: str) -> str:
    return subprocess.run(["convert", *args], capture_output=True, check=True, text=True).stdout


def decode(result, tmp: Path, name: str) -> tuple[Path, str]:
    """The image block of a result, written to a file, plus the caption text."""
    images = [c for c in result.content if getattr(c, "type", "") == "image"]
    texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    assert len(images) == 1, result.content
    assert images[0].mimeType == "image/jpeg"
    data = base64.b64decode(images[0].data)
    assert data[:2] == b"\xff\xd8", data[:16]
    path = tmp / name
    path.write_bytes(data)
    return path, " ".join(texts)


def image_facts(path: Path) -> tuple[int, int, float]:
    """Width, height and the standard deviation of the pixels (0 = uniform), decoded."""
    w, h, sd = magick(str(path), "-format", "%w %h %[fx:standard_deviation]", "info:").split()
    return int(w), int(h), float(sd)


def differing_pixels(a: Path, b: Path) -> int:
    out = subprocess.run(["compare", "-metric", "AE", str(a), str(b), "null:"], capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr
    return int(float(out.stderr.split()[0]))


def real_of(scaled: int, real_side: int, scaled_side: int) -> int:
    """Where the server maps a scaled coordinate: the centre of the real pixels it covers."""
    return (2 * scaled + 1) * real_side // (2 * scaled_side)


async def pointer(session, kasm_id: str) -> tuple[int, int]:
    """The real pointer position, read independently of desktop_action."""
    r = await run(session, kasm_id, "xdotool getmouselocation --shell")
    assert r["exit_code"] == 0, r
    found = dict(line.split("=", 1) for line in r["stdout"].split())
    return int(found["X"]), int(found["Y"])


async def act(session, kasm_id: str, action: str, **extra) -> dict:
    return await call_ok(session, "desktop_action", {"kasm_id": kasm_id, "action": action, **extra})


async def test_screenshot_type_click_windows_and_cursor_on_a_real_display(desktop_demo, tmp_path):
    async with open_session(desktop_demo, "streamable-http") as session:
        async with kasm_session(session) as kasm_id:
            before = await session.call_tool("desktop_screenshot", {"kasm_id": kasm_id})
            assert not before.isError, before.content
            before_path, caption = decode(before, tmp_path, "before.jpg")
            w, h, sd = image_facts(before_path)
            assert (w, h) == SCALED
            assert sd > 0.01, f"the screenshot is uniform (sd={sd})"
            assert "1600×900" in caption and "1280×720" in caption, caption

            listed = await call_ok(session, "desktop_windows", {"kasm_id": kasm_id})
            assert (listed["screen_width"], listed["screen_height"]) == SCALED
            xterms = [win for win in listed["windows"] if "xterm" in win["class"].lower()]
            assert xterms, listed
            xterm = xterms[0]
            assert xterm["title"] == "xterm", xterm

            # Click inside the xterm (scaled space); the pointer lands where the mapping says.
            x = xterm["x"] + xterm["width"] // 2
            y = xterm["y"] + xterm["height"] // 2
            clicked = await act(session, kasm_id, "left_click", coordinate=[x, y])
            assert clicked["cursor"] == {"x": x, "y": y}, clicked
            expected_real = (real_of(x, REAL[0], SCALED[0]), real_of(y, REAL[1], SCALED[1]))
            assert await pointer(session, kasm_id) == expected_real
            assert (clicked["cursor_real"]["x"], clicked["cursor_real"]["y"]) == expected_real

            await act(session, kasm_id, "type", text=TYPED)
            await act(session, kasm_id, "key", text="Return")
            content = None
            with anyio.fail_after(20):
                while content != "typed-by-agent\n":
                    r = await session.call_tool(
                        "read_kasm_file", {"kasm_id": kasm_id, "file_path": "/home/kasm-user/typed.txt"}
                    )
                    content = None if r.isError else structured(r)["content"]
                    if content != "typed-by-agent\n":
                        await anyio.sleep(0.3)

            after = await session.call_tool("desktop_screenshot", {"kasm_id": kasm_id})
            after_path, _ = decode(after, tmp_path, "after.jpg")
            assert image_facts(after_path)[:2] == SCALED
            assert differing_pixels(before_path, after_path) > 100

            # A known point: move there, then cursor_position reports it in scaled space.
            moved = await act(session, kasm_id, "mouse_move", coordinate=[1001, 603])
            assert moved["cursor"] == {"x": 1001, "y": 603}
            position = await act(session, kasm_id, "cursor_position")
            assert position["cursor"] == {"x": 1001, "y": 603}, position
            assert position["screen"] == {
                "width": SCALED[0], "height": SCALED[1], "real_width": REAL[0], "real_height": REAL[1]
            }
            assert await pointer(session, kasm_id) == (real_of(1001, 1600, 1280), real_of(603, 900, 720))

            # Outside the scaled space: refused with the space's size.
            err = await call_err(
                session, "desktop_action", {"kasm_id": kasm_id, "action": "left_click", "coordinate": [1280, 5]}
            )
            assert "1280×720" in err, err

            # An action can bring back a screenshot after the settle delay.
            shot = await session.call_tool(
                "desktop_action",
                {"kasm_id": kasm_id, "action": "wait", "duration": 0.1, "screenshot": True},
            )
            assert not shot.isError, shot.content
            path, _ = decode(shot, tmp_path, "wait.jpg")
            assert image_facts(path)[:2] == SCALED

            # Focus the xterm by id: it reports the focus.
            focused = await call_ok(
                session, "desktop_windows", {"kasm_id": kasm_id, "operation": "focus", "window_id": xterm["id"]}
            )
            assert [win["focused"] for win in focused["windows"] if win["id"] == xterm["id"]] == [True], focused

    # The audit log holds the typed text's size and digest, never the text.
    log = re.sub(r"\x1b\[[0-9;]*m", "", desktop_demo.log())
    assert "kasm call" in log, "debug logging is off, so the next check would prove little"
    assert "typed-by-agent" not in log
    events = [line for line in log.splitlines() if "typed text" in line]
    assert len(events) == 1, log[-3000:]
    assert f"text_chars={len(TYPED)}" in events[0], events[0]
    assert re.search(r'text_hmac_sha256="?[0-9a-f]{64}', events[0]), events[0]
    assert 'tool="desktop_action"' in events[0], events[0]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_session_without_a_display_says_so_and_commands_still_work(headless_demo, transport):
    async with open_session(headless_demo, transport) as session:
        async with kasm_session(session) as kasm_id:
            for tool, arguments in [
                ("desktop_screenshot", {}),
                ("desktop_action", {"action": "cursor_position"}),
                ("desktop_windows", {}),
            ]:
                err = await call_err(session, tool, {"kasm_id": kasm_id, **arguments})
                assert "this session has no display" in err, err
            r = await run(session, kasm_id, "echo still-fine")
            assert r["stdout"] == "still-fine\n"


def _read_until(stream, pattern: str, deadline: float) -> re.Match:
    """Read lines from `stream` until one matches `pattern` (or fail after `deadline` s)."""
    import time

    seen = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matched {pattern!r}:\n{''.join(seen)}")


@pytest.fixture
def served_with_roles(tmp_path: Path):
    """`kasm-mcp serve` (tokens: a viewer and an operator) against `kasm-mcp simulator`."""
    import hashlib
    import os
    import secrets
    import threading
    from types import SimpleNamespace

    from conftest import _binary

    sim = subprocess.Popen(
        [_binary(), "simulator", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    procs = [sim]
    try:
        env = {}
        for _ in range(4):
            m = _read_until(sim.stdout, r"^(KASM_API_\w+|KASM_USER_ID)=(\S+)", 30)
            env[m.group(1)] = m.group(2)
        viewer, operator = ("kmcp_test_" + secrets.token_urlsafe(24) for _ in range(2))
        digest = lambda t: hashlib.sha256(t.encode()).hexdigest()  # noqa: E731
        config = tmp_path / "serve.toml"
        config.write_text(
            f'[server]\nport = 0\n\n[kasm]\napi_url = "{env["KASM_API_URL"]}"\nuser_id = "{env["KASM_USER_ID"]}"\n\n'
            f'[[auth.tokens]]\nname = "watcher"\nsha256 = "{digest(viewer)}"\nrole = "viewer"\n\n'
            f'[[auth.tokens]]\nname = "ops"\nsha256 = "{digest(operator)}"\nrole = "operator"\n'
        )
        serve = subprocess.Popen(
            [_binary(), "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            # Not KASM_MCP_* from the test's environment (KASM_MCP_BIN would be read as a key).
            env=dict(
                {k: v for k, v in os.environ.items() if not k.startswith("KASM_MCP_")},
                KASM_API_KEY=env["KASM_API_KEY"], KASM_API_SECRET=env["KASM_API_SECRET"], RUST_LOG="info",
            ),
        )
        procs.append(serve)
        m = _read_until(serve.stderr, r"(http://127\.0\.0\.1:\d+)/mcp", 30)
        threading.Thread(target=lambda: [None for _ in serve.stderr], daemon=True).start()
        base = m.group(1)
        server = lambda token: SimpleNamespace(  # noqa: E731
            mcp_url=f"{base}/mcp", sse_url=f"{base}/sse", headers={"Authorization": f"Bearer {token}"}
        )
        yield server(viewer), server(operator)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


DESKTOP_TOOLS = {"desktop_screenshot", "desktop_action", "desktop_windows"}


async def test_a_viewer_cannot_see_or_call_the_desktop_tools(served_with_roles):
    viewer, operator = served_with_roles
    async with open_session(operator, "streamable-http") as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert DESKTOP_TOOLS <= names, names
    async with open_session(viewer, "streamable-http") as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert not DESKTOP_TOOLS & names, names
        assert "get_session_screenshot" in names
        for tool in sorted(DESKTOP_TOOLS):
            with pytest.raises(McpError) as refused:
                await session.call_tool(
                    tool, {"kasm_id": "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f", "action": "cursor_position"}
                )
            message = str(refused.value)
            assert f'tool "{tool}" is not available to principal "watcher" (role viewer)' in message, message
