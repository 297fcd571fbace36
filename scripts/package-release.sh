#!/usr/bin/env bash
# Package one built binary as the release archive install.sh downloads:
#   scripts/package-release.sh TARGET BINARY OUTDIR
# writes OUTDIR/kasm-mcp-TARGET.tar.gz (a kasm-mcp-TARGET/ folder with the binary, README.md
# and the example configuration) and OUTDIR/kasm-mcp-TARGET.tar.gz.sha256 (sha256sum format).
# Used by .github/workflows/release.yml and by scripts/ops-tests.sh, so the tested archive
# is the released one.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 TARGET BINARY OUTDIR" >&2; exit 2; }
target="$1" binary="$2" outdir="$3"
root="$(cd "$(dirname "$0")/.." && pwd)"
name="kasm-mcp-$target"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$outdir"
install -m 0755 "$binary" "$stage/$name/kasm-mcp"
cp "$root/README.md" "$stage/$name/README.md"
cp "$root/config/kasm-mcp.example.toml" "$stage/$name/kasm-mcp.example.toml"
tar -C "$stage" -czf "$outdir/$name.tar.gz" "$name"
(
  cd "$outdir"
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$name.tar.gz" > "$name.tar.gz.sha256"
  else
    shasum -a 256 "$name.tar.gz" > "$name.tar.gz.sha256"
  fi
)
echo "$outdir/$name.tar.gz"
