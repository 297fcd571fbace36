#!/usr/bin/env python3
"""Instructions per `get_session_status` call of a release `kasm-mcp`, under callgrind.

Repeatable to ±0.2 % whatever else runs on the machine, so CPU claims between two builds
can be checked without a quiet machine (see docs/bench-notes/perf-gap.md).

    scripts/callgrind-per-call.py <bin-dir> [calls] [--floor] [--footprint]

<bin-dir> holds `kasm-mcp` and `kasm-mcp-load` (e.g. target/release). Starts the simulator,
`kasm-mcp serve` under `valgrind --tool=callgrind` with the load generator's configuration
(its tokens and raised limits, RUST_LOG=warn), creates one session (operator token), makes
300 admin `get_session_status` calls on one keep-alive connection with the load generator's
headers, zeroes the counters, makes `calls` more (default 2000), dumps, and prints the
server's instructions (all threads) per call. With --floor the same calls go to the floor
proxy (`kasm-mcp-load floor-proxy`) under callgrind instead, and the server runs normally.
With --footprint callgrind records each instruction's address (`--dump-instr=yes`) and
the script also prints the measured binary's code the calls ran: distinct 64-byte cache lines
and 4 KiB pages (a code layout's figure: how many i-cache lines and iTLB entries a call needs).
The callgrind file stays in /tmp for `callgrind_annotate`. Loopback only.
"""
import glob, hashlib, http.client, json, os, socket, subprocess, sys, tempfile, time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
floor = "--floor" in sys.argv
footprint = "--footprint" in sys.argv
if not args:
    sys.exit(__doc__)
bindir = args[0]
calls = int(args[1]) if len(args) > 1 else 2000
server_bin = os.path.join(bindir, "kasm-mcp")
work = tempfile.mkdtemp(prefix="callgrind-per-call-")
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def code_footprint(text, calls, binary):
    """Cache lines and pages of `binary`'s code with instructions in the dump (`0x…` cost
    lines under `ob=` of the binary; a `calls=` line's next line is a call's cost, skipped)."""
    names, ob, skip, lines, pages = {}, None, False, {}, set()
    for line in text.splitlines():
        if line.startswith(("ob=", "cob=")):
            key, _, name = line.split("=", 1)[1].partition(" ")
            if name or not key.startswith("("):
                names[key] = name or key
            if line.startswith("ob="):
                ob = names.get(key, key)
        elif line.startswith("calls="):
            skip = True
        elif line.startswith("0x"):
            if skip:
                skip = False
            elif ob is not None and ob.endswith("/" + binary):
                address, ir = int(line.split()[0], 16), int(line.split()[-1])
                lines[address >> 6] = lines.get(address >> 6, 0) + ir
                pages.add(address >> 12)
    every = [line for line, ir in lines.items() if ir >= calls]
    return (f"code of {binary} run: {len(lines)} cache lines of 64 bytes in {len(pages)} pages of "
            f"4 KiB; with at least one instruction per call: {len(every)} lines "
            f"({len(every) * 64 // 1024} KiB) in {len({line >> 6 for line in every})} pages")


try:
    sim = subprocess.Popen(
        [server_bin, "simulator", "--listen", f"127.0.0.1:{free_port()}", "--start-delay-ms", "0",
         "--max-kasms-per-user", "16", "--no-display"],
        env={**os.environ, "RUST_LOG": "error"}, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    procs.append(sim)
    kasm = {}
    for line in sim.stdout:
        if "=" in line:
            key, value = line.strip().split("=", 1)
            kasm[key] = value
        if line.startswith("#"):
            break
    port = free_port()
    config = (f"[server]\nport = {port}\n\n[limits]\nper_ip_per_second = 1000000\nper_ip_burst = 1000000\n"
              "per_principal_per_minute = 100000000\nper_principal_burst = 1000000\n\n"
              "[connections]\nmax_open = 25000\nmax_open_per_ip = 0\n\n"
              "[legacy_sse]\nmax_streams = 1024\nmax_streams_per_principal = 1024\n")
    tokens = [("admin", "load-admin-token", "admin"), ("operator", "load-operator-token", "operator")]
    tokens += [(f"stream-{i}", f"load-stream-token-{i}", "viewer") for i in range(4)]
    for name, secret, role in tokens:
        config += f'\n[[auth.tokens]]\nname = "{name}"\nsha256 = "{digest(secret)}"\nrole = "{role}"\n'
    with open(f"{work}/load.toml", "w") as f:
        f.write(config)
    env = {**os.environ, "KASM_API_URL": kasm["KASM_API_URL"], "KASM_API_KEY": kasm["KASM_API_KEY"],
           "KASM_API_SECRET": kasm["KASM_API_SECRET"], "KASM_USER_ID": kasm["KASM_USER_ID"],
           "MCP_RELAY_URL": f"http://127.0.0.1:{port}", "RUST_LOG": "warn"}
    out = f"{work}/callgrind.out"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    if footprint:
        valgrind[2:2] = ["--dump-instr=yes", "--compress-pos=no"]
    serve = [server_bin, "serve", "--config", f"{work}/load.toml"]
    quiet = dict(stdin=subprocess.DEVNULL, stderr=open(f"{work}/stderr.log", "w"))
    if floor:
        procs.append(subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, **quiet))
        measured = subprocess.Popen(
            valgrind + [os.path.join(bindir, "kasm-mcp-load"), "floor-proxy", "--backend", kasm["KASM_API_URL"]],
            env=env, stdout=subprocess.PIPE, text=True, **quiet)
        floor_port = int(measured.stdout.readline().strip().rsplit(":", 1)[1])
    else:
        measured = subprocess.Popen(valgrind + serve, env=env, stdout=subprocess.DEVNULL, **quiet)
    procs.append(measured)
    for _ in range(600):
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            probe.request("GET", "/readyz")
            if probe.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    mcp = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def tool_call(token, tool, arguments):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": tool, "arguments": arguments}}, separators=(",", ":"))
        mcp.request("POST", "/mcp", body=body, headers={
            "authorization": f"Bearer {token}", "content-type": "application/json",
            "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"})
        answer = mcp.getresponse()
        return answer.status, answer.read()

    status, body = tool_call("load-operator-token", "create_kasm_session", {"image_name": "Terminal"})
    kasm_id = json.loads(body)["result"]["structuredContent"]["kasm_id"]
    if floor:
        proxy = http.client.HTTPConnection("127.0.0.1", floor_port, timeout=60)
        floor_body = json.dumps({"kasm_id": kasm_id, "user_id": kasm["KASM_USER_ID"]})

        def one_call():
            proxy.request("POST", "/status", body=floor_body, headers={"content-type": "application/json"})
            answer = proxy.getresponse()
            assert answer.status == 200, answer.read()
            answer.read()
    else:
        def one_call():
            status, body = tool_call("load-admin-token", "get_session_status", {"kasm_id": kasm_id})
            assert status == 200 and b'"isError":false' in body, body
    for _ in range(300):
        one_call()
    control = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["callgrind_control", "-z", str(measured.pid)], **control)
    for _ in range(calls):
        one_call()
    subprocess.run(["callgrind_control", "-d", "measured", str(measured.pid)], **control)
    time.sleep(1)
    for dump in sorted(glob.glob(out + ".*")):
        text = open(dump).read()
        if "\ndesc: Trigger: dump measured\n" not in text[:2000]:
            continue
        total = next(int(l.split()[1]) for l in text.splitlines() if l.startswith(("totals:", "summary:")))
        what = "floor proxy" if floor else "kasm-mcp get_session_status (admin, /mcp)"
        print(f"{what}: {total / calls:.0f} instructions per call ({total} over {calls} calls); {dump}")
        if footprint:
            print(code_footprint(text, calls, "kasm-mcp-load" if floor else "kasm-mcp"))
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
