#!/usr/bin/env bash
# Benchmark: builds the release binaries and runs the load generator, which starts
# `kasm-mcp simulator` and `kasm-mcp serve` itself (loopback only, every phase bounded) and
# prints the table of docs/BENCHMARKS.md. About 2 minutes with the defaults.
#
#   scripts/bench.sh                      # the full run
#   scripts/bench.sh --duration 10        # longer phases; see --help for every knob
#   scripts/bench.sh --quick              # seconds-long smoke run (figures meaningless)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --quiet
exec target/release/kasm-mcp-load "$@"
