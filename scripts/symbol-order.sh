#!/usr/bin/env bash
# Regenerates link/kasm-mcp.symbol-order, the order lld gives the functions of the release
# `kasm-mcp` (build.rs hands it the list; docs/bench-notes/idle-rss.md, hot-layout.md):
#
# 1. start-up: the functions a starting `kasm-mcp serve` runs up to its first successful
#    /readyz (three configurations, below, against the built-in simulator), in the order of the
#    release binary. Placed together at the start of .text, an idle server maps a few 64 KiB
#    windows of code instead of most of them.
# 2. steady state: the functions that run while a warm server answers tool calls
#    (scripts/steady-calls.py: admin `get_session_status` on /mcp as the load generator sends
#    it, then operator `get_session_status`, `ping`, `tools/list` and a legacy /sse call),
#    hottest first. They follow, as one block, so a call's code spans few pages and cache
#    lines instead of being scattered over .text. The block begins with the start-up
#    functions that are also hot (the end of the start-up block) and goes on with the hot
#    functions a start does not run, so neither block is split and idle RSS stays as in 1.
#
# Run it after a dependency or compiler update, or when the request path changed much; a
# stale list only costs idle RSS and layout (names the binary no longer has are skipped).
#
#   scripts/symbol-order.sh          # needs valgrind (callgrind records which functions ran)
#   scripts/symbol-order.sh --check  # how many listed functions the release binary still has
#   SYMBOL_ORDER_BIN=path/kasm-mcp scripts/symbol-order.sh   # profile that binary, no build
#
# Loopback only; the simulator and the server are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SYMBOL_ORDER_BIN:-}" ]; then
    bin=$SYMBOL_ORDER_BIN
else
    # As the release is built: with the PGO profile (scripts/release-rustflags.sh), whose
    # inlining decides which functions exist.
    RUSTFLAGS="$(scripts/release-rustflags.sh)" cargo build --release --bin kasm-mcp --quiet
    bin=${CARGO_TARGET_DIR:-target}/release/kasm-mcp
fi
if [ "${1:-}" = "--check" ]; then
    found=$(nm --defined-only "$bin" | awk 'NR == FNR {want[$0] = 1; next} ($3 in want) {n++} END {print n + 0}' \
        link/kasm-mcp.symbol-order -)
    echo "$found of $(wc -l <link/kasm-mcp.symbol-order) functions of link/kasm-mcp.symbol-order are in $bin"
    exit 0
fi
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
# SYMBOL_ORDER_KEEP=DIR keeps the callgrind files there (for callgrind_annotate).
work=${SYMBOL_ORDER_KEEP:-$(mktemp -d)}
mkdir -p "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${SYMBOL_ORDER_KEEP:-}" ] || rm -rf "$work"
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

token_hash=$(printf %s "symbol-order-admin" | sha256sum | cut -d' ' -f1)
token="
[[auth.tokens]]
name = \"admin\"
sha256 = \"$token_hash\"
role = \"admin\"
"
# The load configuration's other principals, for the steady-state calls.
roles=""
for role in operator viewer; do
    roles+="
[[auth.tokens]]
name = \"$role\"
sha256 = \"$(printf %s "symbol-order-$role" | sha256sum | cut -d' ' -f1)\"
role = \"$role\"
"
done
# Three starts, and the union of what they ran: configuration from the environment plus a
# token (as a new user starts it) logging at the default `info`; kasm-mcp-load's configuration
# (raised limits and stream caps, its three roles, `warn`); every section of the example
# configuration. The second one then also answers the steady-state calls.
printf '%s' "$token" >"$work/minimal.toml"
printf '[limits]\nper_ip_per_second = 1000000\nper_ip_burst = 1000000\nper_principal_per_minute = 100000000
per_principal_burst = 1000000\n\n[connections]\nmax_open = 25000\nmax_open_per_ip = 0\n
[legacy_sse]\nmax_streams = 10000\nmax_streams_per_principal = 10000\n%s%s' "$token" "$roles" >"$work/load.toml"
{ cat config/kasm-mcp.example.toml; printf '%s' "$token"; } >"$work/example.toml"

# Starts `serve --config FILE` under callgrind with RUST_LOG=$2 (empty: unset), waits for
# /readyz, then stops it; callgrind writes $work/FILE.callgrind. With a third argument
# `steady`, the start-up is dumped first and scripts/steady-calls.py then makes its calls
# (its own dumps, `gss` and `mix`) before the server is stopped.
profile() {
    local config=$1 log=$2 steady=${3:-} port serve_pid ready=""
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
    if [ -n "$steady" ]; then
        callgrind_control -d start-up "$serve_pid" >/dev/null 2>&1
        python3 scripts/steady-calls.py "$port" "$serve_pid" 200
    fi
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
}
profile minimal.toml ""
profile load.toml warn steady
profile example.toml warn

# callgrind names each function that ran (`fn=`, with the instructions it ran on the lines
# after it; a `calls=` line's next line is the callee's cost, not its own) or was called
# (`cfn=`; `f'2` is f called from itself). The dumps of the steady-state calls say
# `Trigger: dump gss` / `dump mix`; every other dump is start-up (or an idle server's
# shutdown). Only the binary's own functions (nm) are listed: the rest are in shared libraries.
# Order: start-up only (address order) | start-up and hot | hot only; hot ones hottest first
# (instructions run in them), get_session_status's next to the border, so both the start-up
# block and the hot block are contiguous.
nm --defined-only "$bin" | awk '$2 ~ /^[tT]$/ {print $1, $3}' | sort >"$work/text"
python3 - "$work" <<'PY' >"$work/order"
import glob, os, re, sys
work = sys.argv[1]
text = [line.split()[1] for line in open(f"{work}/text")]   # in address order
defined = set(text)
start, hot = set(), {"gss": {}, "mix": {}}
for path in glob.glob(f"{work}/*.callgrind*"):
    lines = open(path).read().splitlines()
    trigger = next((l for l in lines[:30] if l.startswith("desc: Trigger:")), "")
    kind = next((k for k in hot if trigger == f"desc: Trigger: dump {k}"), None)
    if kind is None and os.path.exists(f"{path}.1"):
        continue   # the end of a server that made steady-state calls: its shutdown, not a start
    fn, skip = None, False
    for line in lines:
        if line.startswith(("fn=", "cfn=")):
            name = re.sub(r"'[0-9]+$", "", line.split("=", 1)[1])   # recursion depth: f'2
            if kind is None:
                start.add(name)
            if line.startswith("fn="):
                fn = name
        elif line.startswith("calls="):
            skip = True
        elif kind and fn and re.match(r"[0-9+*-]", line):
            if not skip:
                hot[kind][fn] = hot[kind].get(fn, 0) + int(line.split()[-1])
            skip = False
start &= defined
gss = {f: ir for f, ir in hot["gss"].items() if f in defined and ir > 0}
mix = {f: ir for f, ir in hot["mix"].items() if f in defined and ir > 0 and f not in gss}
hottest = lambda names, ir: sorted(names, key=lambda f: -ir[f])   # stable: address order next
in_order = lambda names: [f for f in text if f in names]
blocks = [
    [f for f in text if f in start and f not in gss and f not in mix],   # start-up only
    hottest(in_order(start & mix.keys()), mix),                           # start-up, hot (mix)
    hottest(in_order(start & gss.keys()), gss),                           # start-up, hot (gss)
    hottest(in_order(gss.keys() - start), gss),                           # hot (gss) only
    hottest(in_order(mix.keys() - start), mix),                           # hot (mix) only
]
for block in blocks:
    for name in block:
        print(name)
print(f"start-up {len(start)} functions, {len(start & (gss.keys() | mix.keys()))} of them hot; "
      f"hot only: {len(gss.keys() - start)} (get_session_status), {len(mix.keys() - start)} (the other calls)",
      file=sys.stderr)
PY
mv "$work/order" link/kasm-mcp.symbol-order
echo "link/kasm-mcp.symbol-order: $(wc -l <link/kasm-mcp.symbol-order) functions"
