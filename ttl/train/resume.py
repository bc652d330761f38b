"""Reading a run folder back for :func:`ttl.train.fit`: a finished run to reuse, a checkpoint to resume.

Whatever is wrong with these files' content (truncated, not JSON, JSON of another shape, weights of
another network, a checkpoint missing a part) ends in a warning naming the file and a clean retrain,
never in a traceback and never in a model half loaded from one file and half trained anew. A file
that cannot be read at all (permission denied, an I/O error, a folder in its place) is an OSError
for the caller (the CLI: exit 2 naming it): retraining would hide it, and might take hours.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ttl.errors import DataError
from ttl.provenance import read_json

RESULT_KEYS = {"params_hash": str, "metrics": dict, "history": list, "best_epoch": int}
CHECKPOINT_KEYS = ("params_hash", "epoch", "model", "optimizer", "history", "best", "bad_epochs", "elapsed")


def state_mismatch(model: nn.Module, state: Any) -> str | None:
    """Why ``state`` cannot be loaded into ``model`` as a whole (None when it can)."""
    if not isinstance(state, dict):
        return f"not a state dict ({type(state).__name__})"
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        return (f"weights of another network ({len(missing)} missing keys, e.g. {missing[:2]}; "
                f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})")
    for name, value in own.items():
        if not torch.is_tensor(state[name]) or state[name].shape != value.shape:
            got = tuple(state[name].shape) if torch.is_tensor(state[name]) else type(state[name]).__name__
            return f"weights of another network ({name}: {got}, expected {tuple(value.shape)})"
    return None


def finished(out: Path) -> dict[str, Any] | None:
    """The run folder's result.json, or None when absent or unusable (then the run trains again)."""
    path = out / "result.json"
    if not path.exists():
        return None
    try:
        doc = read_json(path)
    except DataError as e:
        warnings.warn(f"{e}: training the run again", stacklevel=4)
        return None
    bad = [k for k, kind in RESULT_KEYS.items() if not isinstance(doc.get(k), kind)] if isinstance(doc, dict) else []
    if not isinstance(doc, dict) or bad:
        what = f"a JSON {type(doc).__name__}" if not isinstance(doc, dict) else f"no valid {', '.join(bad)}"
        warnings.warn(f"{path}: not a finished run's result ({what}); training the run again", stacklevel=4)
        return None
    return doc


def recorded_input(doc: dict[str, Any]) -> dict[str, Any] | None:
    """What a finished run fed its network (``provenance.params.input``), None when not recorded."""
    prov = doc.get("provenance")
    params = prov.get("params") if isinstance(prov, dict) else None
    value = params.get("input") if isinstance(params, dict) else None
    return value if isinstance(value, dict) else None


def finished_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor] | None:
    """A finished run's model.pt when it loads into ``model``, else None (then the run trains again)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # permission denied, I/O error, a folder: the user's to fix, not a reason to retrain
        raise
    except Exception as e:  # truncated or corrupt: torch raises RuntimeError, EOFError, UnpicklingError...
        warnings.warn(f"{path}: unreadable ({type(e).__name__}: {e}); training the run again", stacklevel=4)
        return None
    why = state_mismatch(model, state)
    if why:
        warnings.warn(f"{path}: {why}; training the run again", stacklevel=4)
        return None
    return state


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The last epoch's checkpoint, or None when unreadable (then the run starts from epoch 0)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except OSError:  # as in finished_weights: an error to report, not corruption
        raise
    except Exception as e:  # a corrupt checkpoint (atomic writes make this rare): start over
        warnings.warn(f"{path}: unreadable ({type(e).__name__}: {e}); training from the first epoch", stacklevel=4)
        return None


def restore(ckpt: Any, path: Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any) -> bool:
    """Load a checkpoint of this run into ``model``, ``opt`` and ``sched``; False (with a warning,
    nothing changed) when it lacks a part or does not fit. The model is loaded last, after every
    check and the optimizer, so a refused checkpoint never leaves it half restored."""
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt] if isinstance(ckpt, dict) else list(CHECKPOINT_KEYS)
    why = f"missing {', '.join(missing)}" if missing else state_mismatch(model, ckpt["model"])
    if why is None:
        try:
            opt.load_state_dict(ckpt["optimizer"])  # validates before it changes anything
            if sched is not None and ckpt.get("scheduler") is not None:
                sched.load_state_dict(ckpt["scheduler"])
        except (ValueError, KeyError, TypeError) as e:
            why = f"its optimizer state does not fit ({e})"
    if why:
        warnings.warn(f"{path}: not a usable checkpoint of this run ({why}); training from the first epoch",
                      stacklevel=4)
        return False
    model.load_state_dict(ckpt["model"])
    return True
