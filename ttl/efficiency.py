"""Model cost: parameters, FLOPs (``torch.utils.flop_counter``), latency and throughput.

Timings use warm-up iterations and report medians over repeats; on CUDA they synchronise around
each timed call (events would hide host overhead that a user does see).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, size: int = 224, batch: int = 1, device: str | torch.device = "cpu") -> int:
    """Forward FLOPs for one batch (multiply-adds count as 2; MACs = FLOPs / 2)."""
    model = model.to(device).eval()
    x = torch.zeros(batch, 3, size, size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    device: str
    batch: int
    size: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    images_per_s: float
    repeats: int
    dtype: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@torch.no_grad()
def time_forward(model: nn.Module, batch: int = 1, size: int = 224, device: str | torch.device = "cpu",
                 warmup: int = 3, repeats: int = 10, dtype: torch.dtype | None = None,
                 channels_last: bool | None = None) -> Timing:
    """Median latency of one forward pass of ``batch`` images, and the implied throughput."""
    device = torch.device(device)
    model = model.to(device).eval()
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None else torch.autocast(device.type, enabled=False)
    times = []
    with ctx:
        for i in range(warmup + repeats):
            _sync(device)
            t0 = time.perf_counter()
            model(x)
            _sync(device)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    med = statistics.median(times)
    q = lambda f: times[min(len(times) - 1, int(f * len(times)))]  # noqa: E731
    return Timing(str(device), batch, size, med, q(0.1), q(0.9), batch / (med / 1000), repeats,
                  str(dtype).removeprefix("torch.") if dtype else "float32")


def profile(model: nn.Module, size: int = 224, device: str | torch.device = "cpu", latency_batch: int = 1,
            throughput_batch: int = 64, warmup: int = 3, repeats: int = 10) -> dict[str, object]:
    """Parameters, FLOPs, batch-1 latency and large-batch throughput of ``model``."""
    flops = count_flops(model, size=size)
    lat = time_forward(model, latency_batch, size, device, warmup, repeats)
    thr = time_forward(model, throughput_batch, size, device, warmup, repeats)
    return {"params": count_params(model), "flops": flops, "macs": flops // 2,
            "latency_ms": lat.median_ms, "latency": lat.as_dict(),
            "throughput_img_s": thr.images_per_s, "throughput": thr.as_dict()}
