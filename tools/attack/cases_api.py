"""Attack 4: the Python API with bad values: ``TrainConfig``/``fit``, ``ttl.data.load``, the model
builders. Promise: a ``TTLError`` (or a ValueError/TypeError raised by ttl's own checks) naming the
value, never a crash deep inside torch or NumPy, never a silent acceptance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import Attempt, run_api


def _tiny() -> tuple[Any, Any]:
    import ttl.data

    kw = dict(n_per_class=4, size=32)
    return ttl.data.load("phantom-low", split="train", **kw), ttl.data.load("phantom-low", split="val", **kw)


def _fit(**cfg: Any) -> Callable[[], Any]:
    def call() -> Any:
        from ttl.strategies import prepare
        from ttl.train import TrainConfig, fit

        train, val = _tiny()
        base = dict(epochs=1, batch_size=8, n_boot=0, progress=False, patience=0, device="cpu")
        model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
        return fit(model, train, val, TrainConfig(**{**base, **cfg}))
    return call


def _load(*args: Any, **kw: Any) -> Callable[[], Any]:
    def call() -> Any:
        import ttl.data

        return ttl.data.load(*args, **kw)
    return call


def _prepare(*args: Any, **kw: Any) -> Callable[[], Any]:
    def call() -> Any:
        from ttl.strategies import prepare

        return prepare(*args, **kw)
    return call


def _build(*args: Any, **kw: Any) -> Callable[[], Any]:
    def call() -> Any:
        from ttl.models import build

        return build(*args, **kw)
    return call


NAN, INF = float("nan"), float("inf")
FIT_BAD = [
    dict(epochs=0), dict(epochs=-3), dict(epochs=1.5), dict(epochs="2"), dict(batch_size=0), dict(batch_size=2.5),
    dict(lr=0), dict(lr=-1), dict(lr=NAN), dict(lr=INF), dict(lr="0.1"), dict(weight_decay=-1), dict(weight_decay=NAN),
    dict(schedule="linear"), dict(amp="int8"), dict(patience=-1), dict(image_size=0), dict(image_size=7),
    dict(image_size=32.5), dict(augment=("rotate",)), dict(device="tpu"), dict(device="cuda:9"), dict(seed=-1),
    dict(n_boot=-5), dict(seed=2**70),
]
FIT_OK = [dict(), dict(schedule="plateau"), dict(schedule="constant"), dict(augment=False), dict(image_size=48),
          dict(augment=("hflip", "vflip"))]
LOAD_BAD = [
    (("nosuchdata",), {}), (("phantom-low",), {"split": "training"}), (("phantom-low",), {"size": 0}),
    (("phantom-low",), {"size": 7.5}), (("phantom-low",), {"n_per_class": 0}), (("phantom-low",), {"n_per_class": -2}),
    (("phantom-low",), {"seed": -1}), (("phantom-low",), {"contrast": NAN}), (("phantom-low",), {"contrast": 0}),
    (("phantom-low",), {"balance": 2}), (("phantom-low",), {"label_noise": 0.7}), (("phantom-low",), {"colour": 1}),
    (("phantom-low",), {"n_per_class": "many"}), (("ham10000",), {}), (("ham10000",), {"root": "/no/such/root"}),
    (({"name": "x"},), {}), ((42,), {}), (("phantom-low",), {"size": 10**6}),
]
MODEL_BAD = [
    (_build, ("vgg16",), {"source": "scratch"}), (_build, ("resnet18", "layer9"), {"source": "scratch"}),
    (_build, ("resnet18", 99), {"source": "scratch"}),
    (_build, ("resnet18", "layer1.0"), {"source": "nope"}),
    (_build, ("resnet18", "layer1.0"), {"source": "scratch", "num_classes": 0}),
    (_build, ("resnet18", "layer1.0"), {"source": "scratch", "num_classes": -1}),
    (_build, ("resnet18", "layer1.0"), {"source": "scratch", "pool": "median"}),
    (_build, ("resnet18", "layer1.0"), {"source": "scratch", "sha256": "abc"}),
    (_prepare, ("bogus", "resnet18"), {"source": "scratch"}), (_prepare, ("lwft", "resnet18"), {"source": "scratch"}),
    (_prepare, ("transfusion", "resnet18", "layer2.1"), {"source": "scratch", "width": 0}),
    (_prepare, ("transfusion", "resnet18", "layer2.1"), {"source": "scratch", "width": 2}),
    (_prepare, ("transfusion", "resnet18", "layer2.1"), {"source": "scratch", "width": NAN}),
    (_prepare, ("transfusion", "resnet18", "layer2.1"), {"source": "scratch", "slim_from": "layer9"}),
    (_prepare, ("ttl", "resnet18", "layer1.0"), {"source": "imagenet:NOPE"}),
    (_prepare, ("ttl", "resnet18", "layer1.0"), {"source": "scratch", "num_classes": 1.5}),
]


def api_attempts() -> list[Attempt]:
    attempts = []
    for cfg in FIT_BAD:
        attempts.append(Attempt("python api", f"fit(TrainConfig({cfg}))", lambda call=_fit(**cfg): run_api(call)))
    for cfg in FIT_OK:
        attempts.append(Attempt("python api", f"fit(TrainConfig({cfg})) trains", lambda call=_fit(**cfg): run_api(call),
                                expect="ok"))
    for args, kw in LOAD_BAD:
        attempts.append(Attempt("python api", f"ttl.data.load{args}, {kw}", lambda call=_load(*args, **kw): run_api(call)))
    for maker, args, kw in MODEL_BAD:
        attempts.append(Attempt("python api", f"{maker.__name__[1:]}{args}, {kw}",
                                lambda call=maker(*args, **kw): run_api(call)))
    return attempts
