#!/bin/sh
# kasm-mcp installer.
#
#   curl -fsSL https://raw.githubusercontent.com/<org>/kasm-mcp/main/install.sh | sh
#   sh install.sh [--prefix DIR] [--from-source DIR] [--version TAG]
#
# Installs the `kasm-mcp` binary into PREFIX/bin (default: ~/.local). It downloads a release
# archive and checks its SHA-256 when KASM_MCP_RELEASE_URL (or --version with the default
# release location) is reachable; otherwise, or with --from-source, it builds the checkout
# with cargo (Rust >= 1.88). It never runs anything as root unless you do.
set -eu

PREFIX="${PREFIX:-$HOME/.local}"
SOURCE_DIR=""
VERSION="${KASM_MCP_VERSION:-latest}"
RELEASE_URL="${KASM_MCP_RELEASE_URL:-}"

say() { printf 'kasm-mcp install: %s\n' "$*"; }
die() { printf 'kasm-mcp install: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
    --from-source) [ $# -ge 2 ] || die "--from-source needs the checkout directory"; SOURCE_DIR="$2"; shift 2 ;;
    --version) [ $# -ge 2 ] || die "--version needs a tag"; VERSION="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

BIN_DIR="$PREFIX/bin"
mkdir -p "$BIN_DIR"

install_from_source() {
  dir="$1"
  [ -f "$dir/Cargo.toml" ] || die "$dir has no Cargo.toml (is it a kasm-mcp checkout?)"
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs, then re-run"
  say "building from source in $dir (release profile)"
  (cd "$dir" && cargo build --release --locked --bin kasm-mcp)
  install -m 0755 "$dir/target/release/kasm-mcp" "$BIN_DIR/kasm-mcp"
}

install_from_release() {
  url="$1"
  command -v curl >/dev/null 2>&1 || die "curl not found"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "downloading $url"
  curl -fsSL "$url" -o "$tmp/kasm-mcp.tar.gz" || return 1
  curl -fsSL "$url.sha256" -o "$tmp/kasm-mcp.tar.gz.sha256" || die "no checksum published next to $url"
  expected=$(cut -d' ' -f1 < "$tmp/kasm-mcp.tar.gz.sha256")
  actual=$(sha256sum "$tmp/kasm-mcp.tar.gz" | cut -d' ' -f1)
  [ "$expected" = "$actual" ] || die "checksum mismatch for $url"
  tar -xzf "$tmp/kasm-mcp.tar.gz" -C "$tmp"
  install -m 0755 "$tmp/kasm-mcp" "$BIN_DIR/kasm-mcp"
}

if [ -n "$SOURCE_DIR" ]; then
  install_from_source "$SOURCE_DIR"
else
  if [ -z "$RELEASE_URL" ]; then
    arch=$(uname -m)
    os=$(uname -s | tr '[:upper:]' '[:lower:]')
    RELEASE_URL="https://github.com/kasm-mcp/kasm-mcp/releases/download/$VERSION/kasm-mcp-$os-$arch.tar.gz"
  fi
  if ! install_from_release "$RELEASE_URL"; then
    here=$(CDPATH='' cd -- "$(dirname -- "$0")" 2>/dev/null && pwd) || here=""
    if [ -n "$here" ] && [ -f "$here/Cargo.toml" ]; then
      say "release download failed; building the checkout at $here instead"
      install_from_source "$here"
    else
      die "could not download $RELEASE_URL; clone the repository and run: sh install.sh --from-source ."
    fi
  fi
fi

say "installed $BIN_DIR/kasm-mcp ($("$BIN_DIR/kasm-mcp" --version))"
case ":$PATH:" in
  *":$BIN_DIR:"*) ;;
  *) say "add $BIN_DIR to your PATH, e.g. export PATH=\"$BIN_DIR:\$PATH\"" ;;
esac
say "try it: kasm-mcp demo    (built-in Kasm simulator, prints a token and client configs)"
