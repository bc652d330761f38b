#!/usr/bin/env bash
# Install Debian's Chromium for the headless book test (tests/test_book_html.py), if missing.
# Idempotent and quiet: does nothing when chromium already runs; prints apt's log only on failure.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && chromium --version >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-chromium: apt-get not found; install Chromium yourself (the browser test skips without it, fails under CI=true)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "setup-chromium: need root (or sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-chromium: installing chromium failed" >&2
    exit 1
fi
echo "setup-chromium: $(chromium --version 2>/dev/null)"
