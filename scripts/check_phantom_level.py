"""Train one converged TTL model on one phantom level and print its test AUROC (a calibration check).

    python scripts/check_phantom_level.py LEVEL CONTRAST N_TRAIN_PER_CLASS CUT LR [EPOCHS]

ResNet-18 from the shipped fractal source, truncated at CUT ("full" for the whole network), 64 px,
N_TRAIN_PER_CLASS training and 100/150 validation/test images per class, AdamW, plateau schedule,
early stopping on validation AUROC (patience 5) under an epoch cap (default 25). Prints one JSON
line: the level, settings, test AUROC, validation AUROC per epoch, best epoch and wall seconds.
The runs behind results/calibration/phantom_mid_v3.json were made with it.
"""

from __future__ import annotations

import json
import sys
import time

import torch

import ttl.data
from ttl.strategies import prepare
from ttl.train import TrainConfig, fit


def main(argv: list[str]) -> None:
    level, contrast, n_train, cut, lr = argv[0], float(argv[1]), int(argv[2]), argv[3], float(argv[4])
    epochs = int(argv[5]) if len(argv) > 5 else 25
    torch.set_num_threads(2)
    sizes = {"train": n_train, "val": 100, "test": 150}
    data = {s: ttl.data.load(f"phantom-{level}", split=s, n_per_class=sizes, size=64, seed=0, contrast=contrast,
                             progress=False) for s in ("train", "val", "test")}
    t0 = time.perf_counter()
    model = prepare("full" if cut == "full" else "ttl", "resnet18", cut=None if cut == "full" else cut,
                    source="fractal")
    cfg = TrainConfig(epochs=epochs, patience=int(__import__("os").environ.get("PATIENCE", 5)), schedule="plateau", batch_size=32, lr=lr, device="cpu", n_boot=0,
                      progress=False)
    res = fit(model, data["train"], data["val"], cfg, test=data["test"])
    print(json.dumps({"level": level, "contrast": contrast, "ntrain": n_train, "cut": cut, "lr": lr,
                      "test": round(res.metrics["test"]["auroc"]["value"], 3),
                      "val": [round(h["val_auroc"], 2) for h in res.history], "best": res.best_epoch,
                      "s": round(time.perf_counter() - t0)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
