#!/usr/bin/env bash
# The commands that produce the shipped FractalDB-style ("fractal") weight sources: ResNet-18 and
# ResNet-50 pre-trained from scratch on 512 IFS fractal classes x 384 images of 112 px (FractalDB
# recipe, scaled down), exported without their classifier to weights/<arch>_fractal.pt and listed in
# weights/manifest.json.
#
#   bash scripts/pretrain_sources.sh            # full run: one H100, about 6-7 min for both
#   TINY=1 bash scripts/pretrain_sources.sh     # tiny CPU smoke run (< 1 min), registers nothing
#
# Environment: PYTHON (default .venv/bin/python, else python3), DEVICE (default cuda),
# OUT_ROOT (default runs/pretrain, or runs/pretrain_tiny), REGISTER=0 to skip writing weights/.
# A run that is interrupted resumes from its last epoch when the script is started again.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONUNBUFFERED=1

if [ "${TINY:-0}" = 1 ]; then
    ROOT=${OUT_ROOT:-runs/pretrain_tiny}
    COMMON=(--classes 4 --images-per-class 8 --size 32 --batch 16 --device "${DEVICE:-cpu}" --no-progress)
    EPOCHS18=1; EPOCHS50=1
    REG=()
else
    ROOT=${OUT_ROOT:-runs/pretrain}
    COMMON=(--classes 512 --images-per-class 384 --size 112 --batch 512 --optimizer sgd --lr 0.2
            --device "${DEVICE:-cuda}" --seed 0)
    EPOCHS18=20; EPOCHS50=16
    REG=()
    if [ "${REGISTER:-1}" != 0 ]; then REG=(--register); fi
fi

set -x
"$PY" -m ttl.commands.pretrain --arch resnet18 --epochs "$EPOCHS18" "${COMMON[@]}" --out "$ROOT/resnet18" "${REG[@]}"
"$PY" -m ttl.commands.pretrain --arch resnet50 --epochs "$EPOCHS50" "${COMMON[@]}" --out "$ROOT/resnet50" "${REG[@]}"
