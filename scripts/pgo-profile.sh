#!/usr/bin/env bash
# Regenerates link/kasm-mcp.profdata, the profile of the release build's profile-guided
# optimisation (scripts/release-rustflags.sh hands it to rustc; docs/bench-notes/hot-layout.md):
# builds an instrumented `kasm-mcp` (`-Cprofile-generate`, same cargo command as the release
# build otherwise, in $CARGO_TARGET_DIR/pgo-generate), starts it against the built-in simulator
# with kasm-mcp-load's configuration, makes the steady-state calls of scripts/steady-calls.py
# (admin get_session_status on /mcp, then operator get_session_status, ping, tools/list and a
# legacy /sse call), stops it and merges its counts with the toolchain's llvm-profdata.
#
#   scripts/pgo-profile.sh            # needs `rustup component add llvm-tools`
#   PGO_GENERATE_BIN=path/kasm-mcp scripts/pgo-profile.sh   # an instrumented build, no build
#
# Then regenerate the symbol order (scripts/symbol-order.sh builds with the new profile).
# Run both after a dependency or compiler update or a change of the request path: a stale
# profile never fails a build, it only loses PGO for what changed. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
[ -x "$profdata" ] || { echo "llvm-profdata is needed: rustup component add llvm-tools" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# No --target: the profile is keyed by mangled names, and they must be those of the release
# build. Build scripts and proc macros are instrumented too; their counts go elsewhere.
if [ -n "${PGO_GENERATE_BIN:-}" ]; then
    bin=$PGO_GENERATE_BIN
else
    target_dir=${CARGO_TARGET_DIR:-target}/pgo-generate
    mkdir -p "$target_dir"
    # A fixed directory: the same RUSTFLAGS next time, so cargo rebuilds only what changed.
    RUSTFLAGS="-Cprofile-generate=$(cd "$target_dir" && pwd)/build-profiles" CARGO_TARGET_DIR=$target_dir \
        cargo build --release --bin kasm-mcp --quiet
    bin=$target_dir/release/kasm-mcp
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
LLVM_PROFILE_FILE="$work/simulator/%p.profraw" RUST_LOG=error "$bin" simulator \
    --listen "127.0.0.1:$sim_port" --start-delay-ms 0 --no-display >"$work/sim.out" &
pids+=($!)
for _ in $(seq 100); do grep -q '^#' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
setting() { sed -n "s/^$1=//p" "$work/sim.out" | head -n1; }

# kasm-mcp-load's configuration: raised limits and stream caps, the three roles.
port=$(free_port)
{
    printf '[server]\nport = %s\n\n[limits]\nper_ip_per_second = 1000000\nper_ip_burst = 1000000\n' "$port"
    printf 'per_principal_per_minute = 100000000\nper_principal_burst = 1000000\n\n'
    printf '[connections]\nmax_open = 25000\nmax_open_per_ip = 0\n\n'
    printf '[legacy_sse]\nmax_streams = 10000\nmax_streams_per_principal = 10000\n'
    for role in admin operator viewer; do
        printf '\n[[auth.tokens]]\nname = "%s"\nsha256 = "%s"\nrole = "%s"\n' "$role" \
            "$(printf %s "symbol-order-$role" | sha256sum | cut -d' ' -f1)" "$role"
    done
} >"$work/load.toml"
env KASM_API_URL="$(setting KASM_API_URL)" KASM_API_KEY="$(setting KASM_API_KEY)" \
    KASM_API_SECRET="$(setting KASM_API_SECRET)" KASM_USER_ID="$(setting KASM_USER_ID)" \
    MCP_RELAY_URL="http://127.0.0.1:$port" RUST_LOG=warn \
    LLVM_PROFILE_FILE="$work/serve/%p.profraw" \
    "$bin" serve --config "$work/load.toml" >/dev/null 2>"$work/serve.err" &
serve_pid=$!
pids+=("$serve_pid")
ready=""
for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
[ -n "$ready" ] || { cat "$work/serve.err" >&2; echo "the server did not become ready" >&2; exit 1; }
python3 scripts/steady-calls.py "$port" - 1500
# The counts are written when the process exits normally (SIGTERM: graceful shutdown).
kill -TERM "$serve_pid"
wait "$serve_pid" || true
"$profdata" merge --sparse -o link/kasm-mcp.profdata "$work"/serve/*.profraw
rustc -vV | sed -n 's/^LLVM version: //p' >link/kasm-mcp.profdata.llvm
echo "link/kasm-mcp.profdata: $(wc -c <link/kasm-mcp.profdata) bytes (LLVM $(cat link/kasm-mcp.profdata.llvm))"
