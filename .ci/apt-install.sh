#!/usr/bin/env bash
# apt-get install the Debian packages named as arguments, as root or through sudo; quiet, with
# apt's log printed only on failure. Used by setup-chromium.sh and setup-datasets.sh.
set -euo pipefail

if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-install: apt-get not found; install $* yourself" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "apt-install: need root (or sudo) to apt-get install $*" >&2
        exit 1
    fi
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get install -y -qq --no-install-recommends "$@" \
       || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "$@"; }; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "apt-install: installing $* failed" >&2
    exit 1
fi
