#!/usr/bin/env bash
# Benchmark: builds the release binaries and runs the load generator, which starts
# `kasm-mcp simulator` and `kasm-mcp serve` itself (loopback only, every phase bounded) and
# prints the table of docs/BENCHMARKS.md. About 2 minutes with the defaults.
#
#   scripts/bench.sh                      # the full run (no soak)
#   scripts/bench.sh --duration 10        # longer phases; see --help for every knob
#   scripts/bench.sh --phases soak        # only the 5-minute mixed soak (--soak-seconds)
#   scripts/bench.sh --phases closed      # only the closed loop (e.g. under `perf record`)
#   scripts/bench.sh --quick              # seconds-long smoke run (figures meaningless)
#
# The FastMCP comparison (bench/fastmcp_status.py) uses .venv/bin/python with the `mcp` SDK
# (scripts/setup-test-deps.sh installs it); without it that phase is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build as shipped: profile-guided (scripts/release-rustflags.sh prints the flags, or
# nothing when the profile does not fit this rustc); RUSTFLAGS of your own take precedence.
RUSTFLAGS=${RUSTFLAGS-$(scripts/release-rustflags.sh)} cargo build --release --bins --quiet
exec target/release/kasm-mcp-load "$@"
