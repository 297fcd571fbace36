"""Fixtures for the real-client tests.

`demo_server` starts `kasm-mcp demo --port 0 --token <random>` once per test session and
yields a `DemoServer` (URLs, token, headers). `open_session` (in mcp_clients.py) connects the
official Python SDK over either transport. Add a `test_*.py` file here to add tests; the
closing line `client tests: N passed, M failed` is printed by the hook at the bottom.

External-server mode: with `KASM_MCP_TEST_URL` (the server's base URL, e.g. a load balancer in
front of several replicas) and `KASM_MCP_TEST_TOKEN` set, `demo_server` is that server instead
of a demo started here (scripts/cluster-tests.sh runs the suite so). Optional beside them:
`KASM_MCP_TEST_SIMULATOR_URL` (the Kasm simulator behind it, for its exec counter) and
`KASM_MCP_TEST_METRICS_URLS` (comma-separated base URLs of every replica, whose /metrics are
summed). Tests marked `demo_process` need the demo process itself (its banner, its pid, a
restart) or start servers of their own; they are skipped in external mode, and only there.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0


@dataclass
class DemoServer:
    base_url: str
    mcp_url: str
    sse_url: str
    token: str
    # None for an external server (KASM_MCP_TEST_URL).
    process: subprocess.Popen | None
    log_path: Path | None
    banner_lines: list[str]
    # The demo's built-in Kasm simulator (its /__simulator/stats counts exec requests).
    simulator_url: str | None = None
    # Base URLs whose /metrics together count everything this server does (every replica).
    metrics_urls: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def banner(self) -> str:
        """The whole banner printed on stdout (waits for its last line)."""
        start = time.monotonic()
        while not any(line.startswith("Press Ctrl-C") for line in self.banner_lines):
            if time.monotonic() - start > DEADLINE:
                raise RuntimeError("the demo banner did not complete:\n" + "".join(self.banner_lines))
            time.sleep(0.05)
        return "".join(self.banner_lines)

    def log(self) -> str:
        if self.log_path is None:
            return "(external server: see its own logs)"
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the Prometheus series `name` with (at least) these labels, over every
        replica's /metrics (0 when no replica has it yet)."""
        total = 0.0
        for base in self.metrics_urls:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            for line in text.splitlines():
                m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$", line)
                if not m or m.group(1) != name:
                    continue
                have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
                if all(have.get(k) == v for k, v in labels.items()):
                    total += float(m.group(3))
        return total


def external_server() -> DemoServer | None:
    """The server named by KASM_MCP_TEST_URL / KASM_MCP_TEST_TOKEN, if set."""
    base = os.environ.get("KASM_MCP_TEST_URL", "").rstrip("/")
    if not base:
        return None
    token = os.environ.get("KASM_MCP_TEST_TOKEN")
    if not token:
        raise RuntimeError("KASM_MCP_TEST_URL is set but KASM_MCP_TEST_TOKEN is not")
    metrics = [u.strip().rstrip("/") for u in os.environ.get("KASM_MCP_TEST_METRICS_URLS", "").split(",") if u.strip()]
    return DemoServer(
        base,
        f"{base}/mcp",
        f"{base}/sse",
        token,
        None,
        None,
        [],
        simulator_url=os.environ.get("KASM_MCP_TEST_SIMULATOR_URL") or None,
        metrics_urls=metrics or [base],
    )


def _binary() -> str:
    explicit = os.environ.get("KASM_MCP_BIN")
    if explicit:
        return explicit
    return str(REPO / "target" / "debug" / "kasm-mcp")


def _start_demo(
    tmp_dir: Path,
    port: int = 0,
    token: str | None = None,
    extra_args: list[str] | None = None,
    rust_log: str | None = None,
) -> DemoServer:
    token = token or "kmcp_test_" + secrets.token_urlsafe(24)
    log_path = tmp_dir / f"demo-{secrets.token_hex(4)}.log"
    log = open(log_path, "w")
    args = [_binary(), "demo", "--port", str(port), "--token", token, "--start-delay-ms", "300"]
    args += extra_args or []
    env = dict(os.environ, RUST_LOG=rust_log or os.environ.get("RUST_LOG", "warn"))
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=REPO
    )
    banner: list[str] = []
    found: dict[str, str] = {}

    def read_banner() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            banner.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+)/mcp\s*$", line)
            if m and "base" not in found:
                found["base"] = m.group(1)
            sim = re.search(r"Kasm simulator:\s+(http://127\.0\.0\.1:\d+)", line)
            if sim:
                found["simulator"] = sim.group(1)
        # keep draining until the process exits so it never blocks on a full pipe

    threading.Thread(target=read_banner, daemon=True).start()
    start = time.monotonic()
    while "base" not in found:
        if process.poll() is not None:
            raise RuntimeError(
                f"kasm-mcp demo exited with {process.returncode}:\n{''.join(banner)}\n{log_path.read_text()}"
            )
        if time.monotonic() - start > DEADLINE:
            process.kill()
            raise RuntimeError(f"kasm-mcp demo printed no URL within {DEADLINE}s:\n{''.join(banner)}")
        time.sleep(0.05)
    base = found["base"]
    # Wait until it answers (the banner is printed after binding, so this is quick).
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() - start > DEADLINE:
            process.kill()
            raise RuntimeError("kasm-mcp demo never became ready")
        time.sleep(0.05)
    return DemoServer(
        base,
        f"{base}/mcp",
        f"{base}/sse",
        token,
        process,
        log_path,
        banner,
        simulator_url=found.get("simulator"),
        metrics_urls=[base],
    )


def _stop(server: DemoServer) -> None:
    assert server.process is not None, "an external server is not stopped by the tests"
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory):
    """One `kasm-mcp demo` for the whole test session (or the external server)."""
    external = external_server()
    if external is not None:
        yield external
        return
    server = _start_demo(tmp_path_factory.mktemp("demo"))
    yield server
    _stop(server)


@pytest.fixture
def fresh_demo_server(tmp_path: Path):
    """A `kasm-mcp demo` of the test's own (for tests that change server state)."""
    server = _start_demo(tmp_path)
    yield server
    _stop(server)


class DemoFactory:
    """Starts and stops demo servers on demand (e.g. to restart one on the same port)."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.running: list[DemoServer] = []

    def start(self, port: int = 0, token: str | None = None) -> DemoServer:
        server = _start_demo(self.tmp_dir, port=port, token=token)
        self.running.append(server)
        return server

    def stop(self, server: DemoServer) -> None:
        _stop(server)
        self.running.remove(server)


@pytest.fixture
def demo_factory(tmp_path: Path):
    factory = DemoFactory(tmp_path)
    yield factory
    for server in list(factory.running):
        factory.stop(server)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "demo_process: needs the kasm-mcp demo process itself (banner, pid, restart) or starts "
        "servers of its own; skipped only when KASM_MCP_TEST_URL names an external server",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """With KASM_MCP_TEST_TIMEOUT_S set (the cluster run sets it), a test that takes longer
    fails with a TimeoutError instead of hanging the whole run (e.g. a client waiting for an
    answer that a broken load-balanced deployment lost)."""
    limit = int(os.environ.get("KASM_MCP_TEST_TIMEOUT_S", "0") or 0)
    if limit <= 0:
        yield
        return

    def expired(signum, frame):  # noqa: ARG001
        # Again in 5 s: the clean-up the exception runs (destroying a session) may hang too.
        signal.alarm(5)
        raise TimeoutError(f"{item.name} took longer than KASM_MCP_TEST_TIMEOUT_S={limit} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001
    if not os.environ.get("KASM_MCP_TEST_URL"):
        return
    skip = pytest.mark.skip(reason="needs the demo process itself; KASM_MCP_TEST_URL names an external server")
    for item in items:
        if item.get_closest_marker("demo_process"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    terminalreporter.write_line(f"client tests: {passed} passed, {failed} failed")
