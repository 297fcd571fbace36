#!/usr/bin/env bash
# Prints the RUSTFLAGS of a release build of kasm-mcp with profile-guided optimisation:
# `-Cprofile-use=link/kasm-mcp.profdata` when that profile exists and was written by the LLVM
# major version of the rustc that builds (link/kasm-mcp.profdata.llvm); nothing otherwise, so a
# missing or foreign profile never fails a build (it builds the same program without PGO). A
# profile older than the code only loses PGO for the functions that changed: LLVM skips a
# function whose control flow no longer matches its counts (the warning is switched off).
#
#   RUSTFLAGS="$(scripts/release-rustflags.sh)" cargo build --release --bin kasm-mcp
#
# Only for `cargo build --release` without `--target`: the profile is keyed by the functions'
# mangled names, which `--target` changes. Debug and test builds do not use it. Regenerate the
# profile with scripts/pgo-profile.sh (docs/bench-notes/hot-layout.md).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=$PWD/link/kasm-mcp.profdata
made_by=$(cat link/kasm-mcp.profdata.llvm 2>/dev/null || true)
llvm=$(${RUSTC:-rustc} -vV 2>/dev/null | sed -n 's/^LLVM version: //p')
# RUSTFLAGS is split at spaces: a checkout path with one cannot be passed this way.
if [ -f "$profile" ] && [ -n "$made_by" ] && [ "${made_by%%.*}" = "${llvm%%.*}" ] \
    && [ "$profile" = "${profile// /}" ]; then
    # The profile's digest as a cfg nothing reads: a new profile changes RUSTFLAGS, so cargo
    # rebuilds with it instead of keeping what an older one compiled (mangled names do not
    # depend on RUSTFLAGS, so the symbol order and the profile's own names still match).
    digest=$(sha256sum "$profile" | cut -c1-16)
    printf '%s\n' "-Cprofile-use=$profile -Cllvm-args=-no-pgo-warn-mismatch --cfg=kasm_mcp_profile_$digest"
else
    echo "release-rustflags.sh: no usable link/kasm-mcp.profdata (written by LLVM ${made_by:-?}," \
        "this rustc has LLVM ${llvm:-?}): building without PGO" >&2
fi
