#!/usr/bin/env bash
# Install Debian's Fashion-MNIST (package dataset-fashion-mnist, MIT) for the real-data notebook
# test (tests/test_real_data_notebooks.py), if missing. Idempotent and quiet: does nothing when
# the files are there (the test skips without them, fails under CI=true).
set -euo pipefail

if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" dataset-fashion-mnist
echo "setup-datasets: dataset-fashion-mnist installed in /usr/share/datasets/fashion-mnist"
