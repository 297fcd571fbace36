#!/bin/sh
# kasm-mcp installer: a prebuilt, checksum-verified release binary, or a build from source.
#
#   curl -fsSL https://raw.githubusercontent.com/kasm-mcp/kasm-mcp/main/install.sh | sh
#   curl -fsSL .../install.sh | sh -s -- --prefix /opt/kasm-mcp --version v0.1.0
#   sh install.sh --from-source .            # build this checkout with cargo
#
# Options:
#   --prefix DIR         install into DIR/bin (default: ~/.local; no root needed)
#   --system             install into /usr/local/bin (uses sudo when not root)
#   --version TAG        a release tag (default: the latest release)
#   --from-source [DIR]  build with cargo: the checkout DIR, or the source archive of TAG
#   -h, --help           this text
# Environment:
#   KASM_MCP_RELEASE_URL  base URL holding kasm-mcp-<target>.tar.gz and .sha256 files
#                         (default: the GitHub release of TAG)
#   KASM_MCP_SOURCE_URL   source archive (.tar.gz) for --from-source and the fallback
#   KASM_MCP_VERSION, KASM_MCP_PREFIX  as --version, --prefix
#
# Release archives are named kasm-mcp-<target>.tar.gz, <target> one of
# x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, x86_64-apple-darwin,
# aarch64-apple-darwin; each has a kasm-mcp-<target>.tar.gz.sha256 beside it. When no
# archive exists for this platform or version, the installer builds from source (cargo,
# Rust >= 1.88). Re-running is safe: an identical binary is left alone.
set -eu

REPO="kasm-mcp/kasm-mcp"
PREFIX="${KASM_MCP_PREFIX:-${HOME:-}/.local}"
VERSION="${KASM_MCP_VERSION:-latest}"
RELEASE_URL="${KASM_MCP_RELEASE_URL:-}"
SOURCE_URL="${KASM_MCP_SOURCE_URL:-}"
FROM_SOURCE=""
SOURCE_DIR=""
SUDO=""

say() { printf 'kasm-mcp install: %s\n' "$*"; }
die() { printf 'kasm-mcp install: error: %s\n' "$*" >&2; exit 1; }
usage() {
  cat <<'EOF_USAGE'
usage: install.sh [--prefix DIR | --system] [--version TAG] [--from-source [DIR]]
  --prefix DIR         install into DIR/bin (default: ~/.local; no root needed)
  --system             install into /usr/local/bin (uses sudo when not root)
  --version TAG        a release tag (default: the latest release)
  --from-source [DIR]  build with cargo: the checkout DIR, or the source archive of TAG
environment: KASM_MCP_RELEASE_URL (base URL of the release archives), KASM_MCP_SOURCE_URL,
  KASM_MCP_VERSION, KASM_MCP_PREFIX
EOF_USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
    --system) PREFIX="/usr/local"; shift ;;
    --version) [ $# -ge 2 ] || die "--version needs a tag"; VERSION="$2"; shift 2 ;;
    --from-source)
      FROM_SOURCE=1
      if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then SOURCE_DIR="$2"; shift; fi
      shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ -n "$PREFIX" ] || die "no install prefix: set HOME or pass --prefix DIR"
BIN_DIR="$PREFIX/bin"

# Root only when the prefix needs it, and only through sudo with the user's consent.
if ! mkdir -p "$BIN_DIR" 2>/dev/null || [ ! -w "$BIN_DIR" ]; then
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
    say "$BIN_DIR is not writable; using sudo to install there"
    SUDO="sudo"
    $SUDO mkdir -p "$BIN_DIR"
  else
    die "cannot write to $BIN_DIR: pick another --prefix (default ~/.local needs no root)"
  fi
fi

TMP=$(mktemp -d 2>/dev/null || mktemp -d -t kasm-mcp-install)
trap 'rm -rf "$TMP"' EXIT INT TERM

download() { # URL FILE: fails quietly (the caller explains)
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 -o "$2" "$1" 2>/dev/null
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    die "neither curl nor wget is installed"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 "$1" | sed 's/^.*= *//'
  else
    die "no sha256sum, shasum or openssl to verify the download with"
  fi
}

detect_target() {
  os=$(uname -s)
  arch=$(uname -m)
  case "$arch" in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) return 1 ;;
  esac
  case "$os" in
    Linux) echo "$arch-unknown-linux-musl" ;;
    Darwin) echo "$arch-apple-darwin" ;;
    *) return 1 ;;
  esac
}

# Put the built or downloaded binary in place (atomically; unchanged when identical).
place() {
  new="$1"
  dest="$BIN_DIR/kasm-mcp"
  if [ -f "$dest" ] && cmp -s "$new" "$dest"; then
    say "$dest is already this build; nothing to do"
    return 0
  fi
  $SUDO cp "$new" "$dest.new"
  $SUDO chmod 0755 "$dest.new"
  $SUDO mv -f "$dest.new" "$dest"
  say "installed $dest"
}

# 0: installed; 1: no archive for this platform/version (fall back); exits on a bad checksum.
install_release() {
  target=$(detect_target) || { say "no prebuilt binary for $(uname -s) $(uname -m)"; return 1; }
  if [ -z "$RELEASE_URL" ]; then
    if [ "$VERSION" = latest ]; then
      RELEASE_URL="https://github.com/$REPO/releases/latest/download"
    else
      RELEASE_URL="https://github.com/$REPO/releases/download/$VERSION"
    fi
  fi
  archive="kasm-mcp-$target.tar.gz"
  say "downloading $RELEASE_URL/$archive"
  if ! download "$RELEASE_URL/$archive" "$TMP/$archive"; then
    say "no release archive at $RELEASE_URL/$archive"
    return 1
  fi
  download "$RELEASE_URL/$archive.sha256" "$TMP/$archive.sha256" \
    || die "the release has no $archive.sha256 beside the archive; refusing to install an unverified binary"
  expected=$(cut -d' ' -f1 < "$TMP/$archive.sha256")
  actual=$(sha256_of "$TMP/$archive")
  [ -n "$expected" ] || die "$archive.sha256 is empty; refusing to install an unverified binary"
  [ "$expected" = "$actual" ] \
    || die "checksum mismatch for $archive (expected ${expected:-nothing}, got $actual); the download is corrupt or tampered with. Nothing was installed"
  say "checksum verified ($actual)"
  mkdir "$TMP/unpacked"
  tar -xzf "$TMP/$archive" -C "$TMP/unpacked"
  bin=$(find "$TMP/unpacked" -type f -name kasm-mcp | head -n 1)
  [ -n "$bin" ] || die "$archive holds no kasm-mcp binary"
  place "$bin"
}

build_in() {
  dir="$1"
  [ -f "$dir/Cargo.toml" ] || die "$dir has no Cargo.toml (is it a kasm-mcp source tree?)"
  command -v cargo >/dev/null 2>&1 \
    || die "building from source needs cargo: install Rust (https://rustup.rs), then re-run"
  say "building from source in $dir (cargo build --release; this takes a few minutes)"
  # The release build as shipped: profile-guided when the tree's profile fits this rustc
  # (scripts/release-rustflags.sh prints the flags, or nothing); RUSTFLAGS of your own win.
  (cd "$dir" \
    && if [ -z "${RUSTFLAGS+set}" ] && [ -f scripts/release-rustflags.sh ]; then
      RUSTFLAGS=$(bash scripts/release-rustflags.sh 2>/dev/null || true)
      export RUSTFLAGS
    fi \
    && cargo build --release --locked --bin kasm-mcp)
  target_dir="${CARGO_TARGET_DIR:-$dir/target}"
  place "$target_dir/release/kasm-mcp"
}

install_source() {
  if [ -n "$SOURCE_DIR" ]; then
    build_in "$SOURCE_DIR"
    return
  fi
  if [ -z "$SOURCE_URL" ]; then
    if [ "$VERSION" = latest ]; then
      SOURCE_URL="https://github.com/$REPO/archive/refs/heads/main.tar.gz"
    else
      SOURCE_URL="https://github.com/$REPO/archive/refs/tags/$VERSION.tar.gz"
    fi
  fi
  say "downloading the source archive $SOURCE_URL"
  download "$SOURCE_URL" "$TMP/source.tar.gz" || die "could not download $SOURCE_URL"
  mkdir "$TMP/source"
  tar -xzf "$TMP/source.tar.gz" -C "$TMP/source"
  manifest=$(find "$TMP/source" -maxdepth 2 -name Cargo.toml | head -n 1)
  [ -n "$manifest" ] || die "the source archive holds no Cargo.toml"
  build_in "$(dirname "$manifest")"
}

if [ -n "$FROM_SOURCE" ]; then
  install_source
elif ! install_release; then
  say "falling back to building from source"
  install_source
fi

say "$("$BIN_DIR/kasm-mcp" --version) is ready"
case ":${PATH:-}:" in
  *":$BIN_DIR:"*) ;;
  *) say "add $BIN_DIR to your PATH:  export PATH=\"$BIN_DIR:\$PATH\"" ;;
esac
cat <<EOF

Next steps:
  kasm-mcp demo                 try it without Kasm (built-in simulator; prints a token and
                                ready-to-paste client configurations)
  kasm-mcp hash-key             mint a bearer token for a client and its config entry
  kasm-mcp check                with KASM_API_URL/KEY/SECRET set: reach Kasm, test the API key
  kasm-mcp serve                serve MCP at http://127.0.0.1:8080/mcp (see docs/DEPLOYMENT.md)
EOF
