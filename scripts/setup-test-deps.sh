#!/usr/bin/env bash
# Installs what the tests need on a fresh machine, only from package registries:
# bubblewrap (simulator sandbox) via apt. Idempotent and quiet when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  echo "installing bubblewrap (the simulator's per-session sandbox)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq bubblewrap >/dev/null
fi
