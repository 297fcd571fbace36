#!/usr/bin/env bash
# Scale-out end to end (issue 11): redis-server, one `kasm-mcp simulator`, three
# `kasm-mcp serve` replicas sharing state through Redis and nginx in round-robin without
# stickiness in front of them, all on loopback; then the real-client suite through nginx, a
# replica SIGKILLed under 20 concurrent clients, the global rate limit and a Redis restart.
# The orchestration and the checks are in tests/cluster/harness.py (its docstring lists them).
# Ends with `cluster tests: N passed, M failed`; exits non-zero on any failure. Every process
# it starts is stopped on exit.
# CLUSTER_TESTS=clients,kill,rate,redis picks phases; CLUSTER_PYTEST_ARGS adds pytest arguments
# to the client suite (e.g. "-k sse --maxfail=100"); CLUSTER_KEEP_LOGS=1 keeps the logs;
# CLUSTER_REPLICAS=1 runs everything against one replica (harness problems vs cluster ones).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh
cargo build --quiet --bin kasm-mcp
export KASM_MCP_BIN="$PWD/target/debug/kasm-mcp"

.venv/bin/python tests/cluster/harness.py &
harness=$!
# The harness stops its processes in a `finally`; forward Ctrl-C/TERM to it and wait for that.
trap 'kill -TERM "$harness" 2>/dev/null || true; wait "$harness" 2>/dev/null || true' INT TERM
set +e
wait "$harness"
status=$?
set -e
exit "$status"
