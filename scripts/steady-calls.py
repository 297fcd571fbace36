#!/usr/bin/env python3
"""Steady-state calls against a `kasm-mcp serve` running under callgrind, for
scripts/symbol-order.sh: which functions a tool call runs, once the server is warm.

    scripts/steady-calls.py <port> <callgrind pid> <rounds>

(`-` for the pid: no callgrind, the same calls, e.g. to train a profile-generating build.)

The server must have the tokens symbol-order.sh configures (`symbol-order-admin`,
`symbol-order-operator`, `symbol-order-viewer`). Creates one session (operator,
`create_kasm_session`), warms every call kind up (first-use work is not steady state), then
zeroes callgrind's counters and makes two measured sets, each dumped on its own:

- `gss`: `rounds` admin `tools/call get_session_status` POSTs to `/mcp` with the load
  generator's headers (the call the open-loop latency target measures);
- `mix`: `rounds` each of the operator's `get_session_status`, `ping` and `tools/list` on
  `/mcp`, and a viewer's `get_session_status` over a legacy `/sse` session.

Loopback only; standard library only.
"""
import http.client, json, socket, subprocess, sys, time

port, pid, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-11-25"}
mcp = http.client.HTTPConnection("127.0.0.1", port, timeout=120)


def post(token, message):
    mcp.request("POST", "/mcp", body=json.dumps(message, separators=(",", ":")),
                headers={**HEADERS, "authorization": f"Bearer {token}"})
    answer = mcp.getresponse()
    body = answer.read()
    if answer.status != 200 or b'"result"' not in body or b'"isError":true' in body:
        sys.exit(f"steady-calls: {message.get('method')}: HTTP {answer.status}: {body[:300]!r}")
    return json.loads(body)


def tool(name, arguments):
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


class Legacy:
    """One legacy (2024-11-05) SSE session: GET /sse, POST /messages, answers on the stream."""

    def __init__(self, token):
        self.token, self.next_id = token, 1
        self.stream = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.stream.sendall(f"GET /sse HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\n"
                            f"authorization: Bearer {token}\r\n\r\n".encode())
        self.buffer = b""
        event, data = self.event()
        if event != "endpoint":
            sys.exit(f"steady-calls: first /sse event {event!r}")
        self.path = data
        self.poster = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.request({"jsonrpc": "2.0", "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "symbol-order", "version": "1"}}})
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def event(self):
        # Chunked transfer encoding: the chunk-size lines are not `event:`/`data:` lines, so
        # reading the raw bytes line by line and keeping only those two fields is enough.
        while True:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                chunk = self.stream.recv(65536)
                if not chunk:
                    sys.exit("steady-calls: the /sse stream ended")
                self.buffer += chunk
                continue
            raw, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            event, data = "message", ""
            for line in raw.decode().split("\r\n" if b"\r\n" in raw else "\n"):
                for part in line.split("\n"):
                    if part.startswith("event:"):
                        event = part[6:].strip()
                    elif part.startswith("data:"):
                        data += part[5:].lstrip(" ")
            if data:
                return event, data

    def post(self, message):
        self.poster.request("POST", self.path, body=json.dumps(message), headers={
            "content-type": "application/json", "authorization": f"Bearer {self.token}"})
        answer = self.poster.getresponse()
        answer.read()
        if answer.status != 202:
            sys.exit(f"steady-calls: POST {self.path}: HTTP {answer.status}")

    def request(self, message):
        message = {**message, "id": self.next_id}
        self.next_id += 1
        self.post(message)
        while True:
            _, data = self.event()
            answer = json.loads(data)
            if answer.get("id") == message["id"]:
                if "result" not in answer or '"isError":true' in data:
                    sys.exit(f"steady-calls: /sse answer {data[:300]}")
                return answer


created = post("symbol-order-operator", tool("create_kasm_session", {"image_name": "Terminal"}))
status = tool("get_session_status", {"kasm_id": created["result"]["structuredContent"]["kasm_id"]})
legacy = Legacy("symbol-order-viewer")


def gss():
    post("symbol-order-admin", status)


def mix():
    post("symbol-order-operator", status)
    post("symbol-order-admin", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    post("symbol-order-admin", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    legacy.request(status)


def callgrind(*args):
    if pid != "-":
        subprocess.run(["callgrind_control", *args, pid], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


for _ in range(50):
    gss()
    mix()
for name, calls in [("gss", gss), ("mix", mix)]:
    callgrind("-z")
    for _ in range(rounds):
        calls()
    callgrind("-d", name)
time.sleep(1)
