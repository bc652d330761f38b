#!/usr/bin/env bash
# Install Debian's Chromium for the headless book test (tests/test_book_html.py), if missing.
# Idempotent and quiet: does nothing when chromium already runs (the browser test skips without
# it, fails under CI=true).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && chromium --version >/dev/null 2>&1; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" chromium
echo "setup-chromium: $(chromium --version 2>/dev/null)"
