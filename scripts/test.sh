#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need, then runs
# formatting, lints, unit + integration tests, a smoke run of the load generator, the MCP
# conformance suite, real-client tests and the scale-out tests (replicas behind nginx, Redis).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
scripts/setup-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "unit and integration tests"
# cargo-nextest (on this project's machines) runs every test in its own process: tests that
# capture a thread's tracing subscriber or measure the process's memory cannot disturb each
# other, and the two cores are kept busy. Plain `cargo test` where it is missing.
mkdir -p target
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --all-targets --no-fail-fast 2>&1 | tee target/cargo-test.log
else
  cargo test --all-targets --no-fail-fast 2>&1 | tee target/cargo-test.log
  grep -q "test result: ok" target/cargo-test.log
fi

step "load generator smoke run (seconds; checks that it works, never a timed pass/fail)"
cargo build --bins --quiet
target/debug/kasm-mcp-load --quick

step "real-client tests (Python and TypeScript MCP SDKs over /mcp and /sse; the OAuth flow with oidc-provider)"
scripts/client-tests.sh

step "scale-out: three replicas sharing state in Redis behind nginx round-robin (the client suite through it, a replica killed, the global rate limit, Redis restarted)"
scripts/cluster-tests.sh

step "operations: deployment-file lints and the installer against a loopback release"
scripts/ops-tests.sh

step "MCP conformance suite (fixtures server and kasm-mcp demo --no-auth)"
scripts/conformance.sh
