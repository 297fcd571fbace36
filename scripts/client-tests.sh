#!/usr/bin/env bash
# Real-client tests: the official Python SDK (mcp 1.x) and TypeScript SDK connect to
# `kasm-mcp demo` over Streamable HTTP (/mcp) and legacy HTTP+SSE (/sse), list the tools and
# call them; and the OAuth flow (oidc-provider + the TypeScript SDK's OAuth client).
# Ends with `client tests: N passed, M failed`; exits non-zero on any failure.
# Extra arguments go to pytest (e.g. `-k sse`, `-x`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh
cargo build --quiet --bin kasm-mcp
export KASM_MCP_BIN="$PWD/target/debug/kasm-mcp"

set +e
.venv/bin/python -m pytest -c tests/clients/pytest.ini tests/clients "$@"
status=$?
set -e
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
  # pytest could not run the tests at all (usage error, no tests collected, crash).
  echo "client tests: 0 passed, 1 failed (pytest exit status $status)"
fi
exit "$status"
