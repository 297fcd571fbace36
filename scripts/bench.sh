#!/usr/bin/env bash
# Benchmark harness (method and results: docs/BENCHMARKS.md). Loopback only, bounded in time.
#
#   scripts/bench.sh [DURATION_S] [CONNECTIONS]
#
# Starts the release `kasm-mcp simulator` and `kasm-mcp serve` against it (rate limits raised
# so the limiter is not what is measured), then measures with wrk:
#   1. ping                      — protocol + HTTP stack overhead (auth, guards, routing)
#   2. tools/list                — a 25-tool, ~32 KB response
#   3. tools/call get_available_workspaces — a tool that makes one Kasm API call
# and sequentially, with curl:
#   4. execute_kasm_command `echo hi` — the full relay round trip (Kasm exec → sandboxed
#      process → wrapper POSTs output back → result), N runs
# plus the server's RSS when idle and after the load.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
EXEC_RUNS=${EXEC_RUNS:-30}

command -v wrk >/dev/null 2>&1 || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
cargo build --release --quiet --bin kasm-mcp
BIN=target/release/kasm-mcp
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
SIM_PORT=$(free_port)
$BIN simulator --listen "127.0.0.1:$SIM_PORT" --start-delay-ms 200 --max-kasms-per-user 4 > "$work/sim.out" 2> "$work/sim.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^KASM_USER_ID=' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
set -a
# shellcheck source=/dev/null
. <(grep '^KASM_' "$work/sim.out")
set +a

TOKEN="bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DIGEST=$($BIN hash-key "$TOKEN")
PORT=$(free_port)
cat > "$work/bench.toml" <<TOML
[server]
port = $PORT
relay_url = "http://127.0.0.1:$PORT"
[[auth.tokens]]
name = "bench"
sha256 = "$DIGEST"
role = "admin"
[limits]
per_ip_per_second = 1000000
per_ip_burst = 1000000
per_principal_per_minute = 100000000
per_principal_burst = 1000000
TOML
RUST_LOG=error $BIN serve --config "$work/bench.toml" > "$work/serve.out" 2>&1 &
SERVE_PID=$!
pids+=("$SERVE_PID")
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -fsS "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status"; }
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//')"
echo "server idle RSS: $(rss_kib) KiB"

run_wrk() {
  local name=$1 body=$2
  BODY=$body TOKEN=$TOKEN wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/post.lua "$URL/mcp" \
    | grep "^BENCH" | sed "s|^BENCH|$name:|"
}
run_wrk "ping" '{"jsonrpc":"2.0","id":1,"method":"ping"}'
run_wrk "tools/list" '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
run_wrk "tools/call get_available_workspaces" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_available_workspaces","arguments":{}}}'
echo "server RSS after load: $(rss_kib) KiB"

post() {
  curl -fsS -X POST "$URL/mcp" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-11-25' -H "Authorization: Bearer $TOKEN" -d "$1" "${@:2}"
}
created=$(post '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_kasm_session","arguments":{"image_name":"Terminal"}}}')
KASM_ID=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["structuredContent"]["kasm_id"])')
body='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_kasm_command","arguments":{"kasm_id":"'"$KASM_ID"'","command":"echo hi"}}}'
: > "$work/exec.times"
for _ in $(seq "$EXEC_RUNS"); do
  out=$(post "$body" -w '\n%{time_total}')
  printf '%s' "$out" | head -n1 | grep -q '"stdout":"hi\\n"' || { echo "exec returned: $out" >&2; exit 1; }
  printf '%s\n' "$(printf '%s' "$out" | tail -n1)" >> "$work/exec.times"
done
python3 - "$work/exec.times" <<'PY'
import statistics, sys
t = sorted(float(x) * 1000 for x in open(sys.argv[1]) if x.strip())
q = lambda p: t[min(len(t) - 1, int(round(p / 100 * (len(t) - 1))))]
print(f"execute_kasm_command echo hi (sequential, n={len(t)}): p50_ms={q(50):.1f} p90_ms={q(90):.1f} max_ms={t[-1]:.1f} mean_ms={statistics.mean(t):.1f}")
PY
post '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"destroy_kasm_session","arguments":{"kasm_id":"'"$KASM_ID"'"}}}' >/dev/null
echo "server RSS at the end: $(rss_kib) KiB"
