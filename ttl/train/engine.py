"""The one training engine: a step, an epoch, a prediction pass and a checkpoint.

:func:`ttl.train.fit` (finetuning), :func:`ttl.pretrain.pretrain` (source pretraining) and
``ttl bench train`` (finetuning throughput) all train through :class:`TrainStep` and
:func:`train_one_epoch`, so the benchmark times exactly the step the study trains with (autocast,
gradient scaler, optimizer and per-batch scheduler included), and a fix to the step reaches all
three. Schedulers are torch's own (``CosineAnnealingLR``, ``ReduceLROnPlateau``, and ``LambdaLR``
for a linear warm-up then a cosine decay). As in torchvision's classification reference, one
checkpoint dict per epoch holds the model, optimizer and scheduler states and the caller's own
state (history, best epoch...), written atomically.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ttl.provenance import atomic_torch_save

SCHEDULES = ("cosine", "plateau", "constant", "warmup-cosine")


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting: "auto" is bf16 on CUDA and off elsewhere."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    return torch.float16 if amp == "fp16" else torch.bfloat16


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``; no context at all for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(params: list[nn.Parameter] | list[dict[str, Any]], lr: float, weight_decay: float,
                   device: torch.device) -> torch.optim.Optimizer:
    """AdamW; the fused CUDA kernel on GPU (one launch for all parameters)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """The factor of the base learning rate at each step: a linear warm-up over ``warmup_steps``,
    then a cosine decay to 0 at ``total_steps``. A plain function, so a ``LambdaLR`` checkpoint
    keeps only the step count: resumed with more epochs, the decay follows the new total."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return factor


def make_scheduler(opt: torch.optim.Optimizer, schedule: str, total_steps: int, warmup_steps: int = 0) -> Any:
    """A torch scheduler: ``cosine`` and ``warmup-cosine`` are stepped per batch (to 0 over
    ``total_steps``), ``plateau`` per epoch on the validation AUROC, ``constant`` is None."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    total = max(1, total_steps)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if schedule == "warmup-cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, max(1, warmup_steps)))
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2)
    return None


@dataclass
class TrainStep:
    """One optimisation step: forward under autocast, loss in float32, backward (scaled for fp16),
    optimizer step, then the per-batch scheduler. ``forward`` is the module that runs (possibly
    ``torch.compile``'d); ``model`` owns the parameters. Calling it returns the detached loss and
    logits; it never synchronises with the host."""

    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp: torch.dtype | None = None
    scheduler: Any = None  # stepped here, after every batch
    scaler: torch.amp.GradScaler | None = None
    forward: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None
    epoch_scheduler: Any = None  # stepped by the caller once per epoch (ReduceLROnPlateau)

    @property
    def any_scheduler(self) -> Any:
        """The scheduler whose state a checkpoint keeps (per batch or per epoch)."""
        return self.scheduler if self.scheduler is not None else self.epoch_scheduler

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.amp, self.device):
            logits = (self.forward or self.model)(x)
            loss = self.loss_fn(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach(), logits.detach()


def make_train_step(model: nn.Module, loss_fn: nn.Module, device: torch.device, *, lr: float,
                    weight_decay: float, schedule: str, total_steps: int, amp: str = "auto",
                    compile: bool = False, params: list[nn.Parameter] | list[dict[str, Any]] | None = None,
                    optimizer: torch.optim.Optimizer | None = None, warmup_steps: int = 0) -> TrainStep:
    """The step :func:`ttl.train.fit` trains with: AdamW over the trainable parameters (or
    ``optimizer``), the schedule's torch scheduler, a gradient scaler for fp16 only."""
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    opt = optimizer or make_optimizer(params, lr, weight_decay, device)
    sched = make_scheduler(opt, schedule, total_steps, warmup_steps)
    dtype = amp_dtype(amp, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    per_batch = sched if schedule in ("cosine", "warmup-cosine") else None
    return TrainStep(model, loss_fn, opt, device, dtype, per_batch, scaler,
                     torch.compile(model) if compile else None, epoch_scheduler=sched if per_batch is None else None)


def train_one_epoch(step: TrainStep, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    count_correct: bool = False) -> dict[str, float]:
    """Run ``step`` over one epoch of batches; mean training loss (and top-1 accuracy when asked).

    The sums stay on the device and are read once at the end (no host sync per batch)."""
    step.model.train()
    loss_sum = torch.zeros((), device=step.device)
    correct = torch.zeros((), device=step.device, dtype=torch.long)
    seen = 0
    for x, y in batches:
        loss, logits = step(x, y)
        loss_sum += loss * len(y)
        if count_correct:
            correct += (logits.argmax(dim=1) == y).sum()
        seen += len(y)
    out = {"loss": float(loss_sum) / max(seen, 1), "n": seen}
    if count_correct:
        out["accuracy"] = int(correct) / max(seen, 1)
    return out


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                   amp: torch.dtype | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 logits and labels of ``model`` over un-augmented ``batches`` (eval mode, restored after)."""
    was_training = model.training
    model.eval()
    outs, ys = [], []
    for x, y in batches:
        with autocast(amp, device):
            logits = model(x)
        outs.append(logits.float())
        ys.append(y)
    model.train(was_training)
    if not outs:
        return torch.zeros((0,), device=device), torch.zeros((0,), device=device, dtype=torch.long)
    return torch.cat(outs), torch.cat(ys)


def save_checkpoint(path: Path, key: str, epoch: int, step: TrainStep, **state: Any) -> None:
    """The epoch's checkpoint, atomically: run key, epoch, model, optimizer and scheduler states,
    and the caller's ``state`` (history, best, counters)."""
    sched = step.any_scheduler
    atomic_torch_save(path, {"params_hash": key, "epoch": epoch, "model": step.model.state_dict(),
                             "optimizer": step.optimizer.state_dict(),
                             "scheduler": sched.state_dict() if sched is not None else None, **state})


def finite_weights(model: nn.Module) -> bool:
    """True when every floating parameter is finite (one reduction per tensor)."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.is_floating_point())
