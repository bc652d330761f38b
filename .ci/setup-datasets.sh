#!/usr/bin/env bash
# Install Debian's Fashion-MNIST (package dataset-fashion-mnist, MIT) for the real-data notebook
# test (tests/test_real_data_notebooks.py), if missing. Idempotent and quiet: does nothing when the
# files are there; prints apt's log only on failure.
set -euo pipefail

if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-datasets: apt-get not found; get Fashion-MNIST yourself (see data_manifests/fashion-mnist-shirts.yaml; the test skips without it, fails under CI=true)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "setup-datasets: need root (or sudo) to apt-get install dataset-fashion-mnist" >&2
        exit 1
    fi
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist \
       || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist; }; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-datasets: installing dataset-fashion-mnist failed" >&2
    exit 1
fi
echo "setup-datasets: dataset-fashion-mnist installed in /usr/share/datasets/fashion-mnist"
