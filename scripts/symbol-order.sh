#!/usr/bin/env bash
# Regenerates link/kasm-mcp.symbol-order: the functions a starting `kasm-mcp serve` runs up to
# its first successful /readyz (three configurations, below, against the built-in simulator),
# in the order of the release binary.
# build.rs hands the list to lld, which places these functions together at the start of .text,
# so an idle server maps a few 64 KiB windows of code instead of most of them (see
# docs/bench-notes/idle-rss.md). Run it after a dependency or compiler update; a stale list
# only costs idle RSS (names the binary no longer has are skipped).
#
#   scripts/symbol-order.sh          # needs valgrind (callgrind records which functions ran)
#   scripts/symbol-order.sh --check  # how many listed functions the release binary still has
#
# Loopback only; the simulator and the server are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kasm-mcp --quiet
bin=${CARGO_TARGET_DIR:-target}/release/kasm-mcp
if [ "${1:-}" = "--check" ]; then
    found=$(nm --defined-only "$bin" | awk 'NR == FNR {want[$0] = 1; next} ($3 in want) {n++} END {print n + 0}' \
        link/kasm-mcp.symbol-order -)
    echo "$found of $(wc -l <link/kasm-mcp.symbol-order) functions of link/kasm-mcp.symbol-order are in $bin"
    exit 0
fi
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The simulator prints KASM_API_URL=… lines, then a line starting with '#'.
sim_port=$(free_port)
RUST_LOG=error "$bin" simulator --listen "127.0.0.1:$sim_port" --start-delay-ms 0 --no-display \
    >"$work/sim.out" &
pids+=($!)
for _ in $(seq 100); do grep -q '^#' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
setting() { sed -n "s/^$1=//p" "$work/sim.out" | head -n1; }

token_hash=$(printf %s "symbol-order-token" | sha256sum | cut -d' ' -f1)
token="
[[auth.tokens]]
name = \"admin\"
sha256 = \"$token_hash\"
role = \"admin\"
"
# Three starts, and the union of what they ran: configuration from the environment plus a
# token (as a new user starts it) logging at the default `info`; kasm-mcp-load's configuration
# (raised limits and stream caps, `warn`); every section of the example configuration.
printf '%s' "$token" >"$work/minimal.toml"
printf '[limits]\nper_ip_per_second = 1000000\nper_ip_burst = 1000000\nper_principal_per_minute = 100000000
per_principal_burst = 1000000\n\n[connections]\nmax_open = 25000\nmax_open_per_ip = 0\n
[legacy_sse]\nmax_streams = 10000\nmax_streams_per_principal = 10000\n%s' "$token" >"$work/load.toml"
{ cat config/kasm-mcp.example.toml; printf '%s' "$token"; } >"$work/example.toml"

# Starts `serve --config FILE` under callgrind with RUST_LOG=$2 (empty: unset), waits for
# /readyz, then stops it; callgrind writes $work/FILE.callgrind.
profile() {
    local config=$1 log=$2 port serve_pid ready=""
    port=$(free_port)
    env KASM_API_URL="$(setting KASM_API_URL)" KASM_API_KEY="$(setting KASM_API_KEY)" \
        KASM_API_SECRET="$(setting KASM_API_SECRET)" KASM_USER_ID="$(setting KASM_USER_ID)" \
        MCP_SERVER_PORT="$port" MCP_RELAY_URL="http://127.0.0.1:$port" ${log:+RUST_LOG=$log} \
        valgrind --tool=callgrind --demangle=no --compress-strings=no \
        --callgrind-out-file="$work/$config.callgrind" \
        "$bin" serve --config "$work/$config" >/dev/null 2>"$work/$config.err" &
    serve_pid=$!
    pids+=("$serve_pid")
    for _ in $(seq 600); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
        sleep 0.2
    done
    [ -n "$ready" ] || { cat "$work/$config.err" >&2; echo "$config: the server did not become ready" >&2; exit 1; }
    sleep 1
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
}
profile minimal.toml ""
profile load.toml warn
profile example.toml warn

# callgrind names each function that ran (`fn=`) or was called (`cfn=`); keep the
# functions that ran and that the binary defines, in the binary's address order.
cat "$work"/*.callgrind | sed -n 's/^c\?fn=//p' | sort -u >"$work/ran"
nm --defined-only "$bin" | awk '$2 ~ /^[tT]$/ {print $1, $3}' | sort >"$work/text"
awk 'NR == FNR {ran[$0] = 1; next} ($2 in ran) && !seen[$2]++ {print $2}' \
    "$work/ran" "$work/text" >link/kasm-mcp.symbol-order
echo "link/kasm-mcp.symbol-order: $(wc -l <link/kasm-mcp.symbol-order) functions" \
    "($(wc -l <"$work/ran") ran, the rest are in shared libraries)"
