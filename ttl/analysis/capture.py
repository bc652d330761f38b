"""Capture the outputs of named sub-modules of any ``torch.nn.Module`` with forward hooks."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ttl.errors import ConfigError

# reducer(output of one batch, index of its first image, total number of images) -> tensor
Reducer = Callable[[torch.Tensor, int, int], torch.Tensor]


def spatial_pool(t: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension after the channel one ((N, C, H, W) -> (N, C))."""
    return t.mean(dim=tuple(range(2, t.ndim))) if t.ndim > 2 else t


def _as_images(images: Any) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor):
        raise ConfigError("images must be a torch tensor or numpy array, got "
                          f"{type(images).__name__}")
    if not torch.is_floating_point(x):
        raise ConfigError(f"images must be floating point (converted and normalised as the model "
                          f"expects), got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ConfigError(f"images must be a non-empty batch (N, ...), got shape {tuple(x.shape)}")
    return x


def check_layers(model: nn.Module, layers: Iterable[str]) -> list[str]:
    """The layer names, checked against ``model.named_modules()`` (with suggestions)."""
    names = dict(model.named_modules())
    out = []
    for layer in layers:
        if not isinstance(layer, str) or layer not in names:
            close = difflib.get_close_matches(str(layer), list(names), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"layers: {layer!r} is not a sub-module of "
                              f"{type(model).__name__}{hint}")
        out.append(layer)
    if not out:
        raise ConfigError("layers: give at least one module name")
    return out


def _model_device(model: nn.Module) -> torch.device | None:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return None


def _input_dtype(model: nn.Module, x: torch.Tensor) -> torch.dtype:
    """The dtype of the model's floating parameters (so float64 images feed a float32 model)."""
    for p in model.parameters():
        if torch.is_floating_point(p):
            return p.dtype
    return x.dtype


def capture(model: nn.Module, images: Any, reducers: Mapping[str, Reducer],
            batch_size: int = 64, device: str | torch.device = "cpu", progress: bool = False
            ) -> dict[str, torch.Tensor]:
    """Run ``images`` through ``model`` in eval mode and no_grad, batch by batch, and return per
    layer the concatenation (dim 0, float32, CPU) of ``reducer(output, start, n_total)``.

    The training flags of every module, and the model's device, are restored afterwards.
    A module that runs more than once per forward (a shared ReLU) or never is an error.
    """
    x = _as_images(images)
    layers = check_layers(model, reducers)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    modules = dict(model.named_modules())
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    calls = dict.fromkeys(layers, 0)
    state = {"start": 0}
    n_total = x.shape[0]

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            calls[name] += 1
            out = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(out, torch.Tensor):
                raise ConfigError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            if calls[name] == 1:  # clone: a later in-place op must not change what we keep
                kept = reducers[name](out.detach(), state["start"], n_total)
                store[name].append(kept.float().to("cpu", copy=True))
        return hook

    training = {m: m.training for m in model.modules()}
    original_device = _model_device(model)
    dtype = _input_dtype(model, x)
    handles = [modules[name].register_forward_hook(make_hook(name)) for name in layers]
    try:
        if original_device is not None and original_device != device:
            model.to(device)
        model.eval()
        starts = range(0, n_total, batch_size)
        with torch.no_grad():
            for start in tqdm(starts, desc="activations", disable=not progress):
                state["start"] = start
                for name in layers:
                    calls[name] = 0
                model(x[start:start + batch_size].to(device=device, dtype=dtype))
                for name, count in calls.items():
                    if count != 1:
                        what = "never ran" if count == 0 else f"ran {count} times"
                        raise ConfigError(
                            f"layer {name!r} {what} in one forward pass; hook a module that runs "
                            "exactly once (e.g. the whole block rather than a shared ReLU)")
    finally:
        for h in handles:
            h.remove()
        for m, flag in training.items():
            m.training = flag
        if original_device is not None and original_device != device:
            model.to(original_device)
    return {name: torch.cat(store[name], dim=0) for name in layers}


def activations(model: nn.Module, images: Any, layers: Iterable[str], batch_size: int = 64,
                device: str | torch.device = "cpu",
                reduce: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
                progress: bool = False) -> dict[str, torch.Tensor]:
    """Outputs of the named sub-modules (names from ``model.named_modules()``) on ``images``.

    ``images``: a float tensor/array (N, ...) already normalised for the model. ``reduce``:
    None keeps whole outputs, ``"pool"`` averages conv maps over space per batch (saves memory),
    or a callable applied to each batch's output. Returns float32 CPU tensors keyed by layer.
    The model is run in eval mode without gradients; its modes and device are restored.
    """
    if reduce is None:
        fn: Callable[[torch.Tensor], torch.Tensor] = lambda t: t  # noqa: E731
    elif reduce == "pool":
        fn = spatial_pool
    elif callable(reduce):
        fn = reduce
    else:
        raise ConfigError(f"reduce must be None, 'pool' or a callable, got {reduce!r}")
    names = list(layers) if not isinstance(layers, str) else [layers]
    return capture(model, images, {name: (lambda t, _s, _n: fn(t)) for name in names},
                   batch_size=batch_size, device=device, progress=progress)
