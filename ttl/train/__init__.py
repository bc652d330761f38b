"""Training and evaluation: ``fit``, ``evaluate``, ``predict``, ``TrainConfig``."""

from ttl.train.loop import FitResult, TrainConfig, evaluate, fit, predict, resolve_device

__all__ = ["FitResult", "TrainConfig", "evaluate", "fit", "predict", "resolve_device"]
