"""Grad-CAM (and friends) per cut with a faithfulness score, built on ``pytorch_grad_cam``.

:func:`gradcam` explains a (possibly truncated) :class:`~ttl.models.TTLModel`; by default it looks
at the last kept block. :func:`faithfulness` checks that the heatmap means something: a deletion
(or insertion) curve of the target-class probability when the most salient pixels are replaced by
a baseline, against the same curve for a random pixel order. :func:`plot_cams` draws a grid.

``pytorch_grad_cam`` takes ~12 s to import cold, so it is imported inside the functions. The
package switches the model to eval mode and leaves gradients on the parameters: both are
restored here (train/eval flags per module, ``.grad`` and ``requires_grad`` as they were).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ttl.errors import ConfigError
from ttl.registry import Registry



@dataclass(frozen=True)
class CamMethod:
    """One CAM method of the registry: ``make(model, layer, batch_size)`` returns an object called as
    ``cam(input_tensor=x, targets=[...])`` giving (N, H, W) maps in [0, 1] and holding
    ``activations_and_grads`` (pytorch_grad_cam's ``BaseCAM`` interface)."""

    name: str
    summary: str
    make: Callable[[nn.Module, nn.Module, int], Any]


#: The CAM registry, method name -> :class:`CamMethod`; :func:`register_cam` adds one.
METHODS: Registry[CamMethod] = Registry("CAM method")


def register_cam(name: str, summary: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``make(model, layer, batch_size)`` as the CAM method ``name``."""
    def add(make: Callable[..., Any]) -> Callable[..., Any]:
        METHODS.add(name.lower(), CamMethod(name.lower(), summary, make))
        return make
    return add


def _package_cam(class_name: str, **extra: Any) -> Callable[[nn.Module, nn.Module, int], Any]:
    """A maker for one of pytorch_grad_cam's classes (imported on first use: it is slow to import)."""
    def make(model: nn.Module, layer: nn.Module, batch_size: int) -> Any:
        import pytorch_grad_cam

        kwargs = {k: (v() if callable(v) else v) for k, v in extra.items()}
        if class_name == "AblationCAM":
            kwargs["batch_size"] = batch_size
        cam = getattr(pytorch_grad_cam, class_name)(model=model, target_layers=[layer], **kwargs)
        if class_name == "ScoreCAM":
            cam.batch_size = batch_size
        return cam
    return make


def _ablation_layer() -> Any:
    from pytorch_grad_cam.ablation_layer import AblationLayer

    return AblationLayer()


for _name, _cls, _summary in [
        ("gradcam", "GradCAM", "Grad-CAM (Selvaraju et al. 2017): activations weighted by pooled gradients"),
        ("gradcam++", "GradCAMPlusPlus", "Grad-CAM++: second-order weights"),
        ("hirescam", "HiResCAM", "HiResCAM: element-wise gradient x activation"),
        ("xgradcam", "XGradCAM", "XGrad-CAM: axiom-derived weights"),
        ("eigencam", "EigenCAM", "Eigen-CAM: first principal component of the activations (no gradients)"),
        ("layercam", "LayerCAM", "LayerCAM: positive gradients per position"),
        ("scorecam", "ScoreCAM", "Score-CAM: activation maps scored by the model's output"),
]:
    register_cam(_name, _summary)(_package_cam(_cls))
register_cam("ablationcam", "Ablation-CAM: the drop in score when each channel is ablated")(
    _package_cam("AblationCAM", ablation_layer=_ablation_layer))
BASELINES = ("blur", "mean", "zero")
MODES = ("deletion", "insertion")


@dataclass
class CamResult:
    """Heatmaps of one method at one layer for a batch of images."""

    heatmaps: np.ndarray  # (N, H, W) float32 in [0, 1]
    overlays: np.ndarray  # (N, H, W, 3) uint8 RGB (heatmap blended with the image)
    targets: np.ndarray  # (N,) int64 class explained per image
    method: str
    layer: str  # the target layer's name inside the model (e.g. "backbone.layer2.1")
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (N,) P(target)
    cut: str | None = None

    def __len__(self) -> int:
        return int(self.heatmaps.shape[0])


@dataclass
class Faithfulness:
    """Deletion/insertion curves of the CAM order against random pixel orders.

    ``curves[i, k]``: probability of image i's target class after ``fractions[k]`` of its pixels
    were replaced (deletion: most salient first, by the baseline; insertion: the most salient
    pixels of the image put back onto the baseline). Deletion: a lower AUC is better;
    insertion: a higher AUC is better. ``random_*`` is the same with random orders (mean over
    ``n_random`` orders), the chance level a CAM has to beat.
    """

    mode: str
    baseline: str
    fractions: np.ndarray  # (S,)
    curves: np.ndarray  # (N, S)
    random_curves: np.ndarray  # (N, S)
    auc: np.ndarray  # (N,)
    random_auc: np.ndarray  # (N,)
    targets: np.ndarray  # (N,)
    road: np.ndarray | None = None  # (N,) ROAD combined score (higher is better) when asked
    road_error: str | None = None

    @property
    def mean_auc(self) -> float:
        return float(self.auc.mean())

    @property
    def mean_random_auc(self) -> float:
        return float(self.random_auc.mean())

    @property
    def beats_random(self) -> float:
        """Fraction of images whose CAM order beats their random orders."""
        better = self.auc < self.random_auc if self.mode == "deletion" else self.auc > self.random_auc
        return float(better.mean())

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "baseline": self.baseline, "n": int(len(self.auc)),
                "auc": self.mean_auc, "random_auc": self.mean_random_auc,
                "beats_random": self.beats_random, "lower_is_better": self.mode == "deletion",
                "fractions": self.fractions.tolist(), "curve": self.curves.mean(0).tolist(),
                "random_curve": self.random_curves.mean(0).tolist(),
                "road": None if self.road is None else float(np.mean(self.road)),
                "road_error": self.road_error}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def to_display(images: torch.Tensor | np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised images (N, 3, H, W) or (3, H, W) -> float32 RGB (N, H, W, 3) / (H, W, 3) in [0, 1]."""
    x = torch.as_tensor(images).detach().float().cpu()
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ConfigError(f"to_display: images must be (N, C, H, W) with C in (1, 3), got {tuple(x.shape)}")
    m = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
    out = (x * s + m).clamp_(0, 1)
    if out.shape[1] == 1:
        out = out.expand(-1, 3, -1, -1)
    arr = out.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)
    return arr[0] if single else arr


def model_inputs(model: nn.Module, images: Any, size: int | None = None) -> torch.Tensor:
    """uint8 images (N, C, H, W) (a tensor, array or dataset) -> the model's normalised input."""
    from ttl.train.batches import normalised_images
    from ttl.train.inputs import model_statistics

    raw = getattr(images, "images", images)
    x = torch.as_tensor(np.asarray(raw)) if not isinstance(raw, torch.Tensor) else raw
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ConfigError(f"model_inputs: expected uint8 (N, C, H, W) images, got {x.dtype} {tuple(x.shape)}")
    mean, std = model_statistics(model)
    return normalised_images(x, size, mean, std)


def _model_norm(model: nn.Module, mean: Sequence[float] | None,
                std: Sequence[float] | None) -> tuple[Sequence[float], Sequence[float]]:
    if mean is not None and std is not None:
        return mean, std
    from ttl.train.inputs import model_statistics

    return model_statistics(model)


def resolve_target_layer(model: nn.Module, target_layer: nn.Module | str | None = None) -> tuple[nn.Module, str]:
    """The module to explain and its name: the last kept block by default, a cut name
    (``"layer2.1"``), a module name (``"backbone.layer2.1"``) or a module of ``model``.

    A cut (the default, or a name) means the module whose output *is* that cut: the last module
    of its block, after the block's activation (``model.last_block()`` for the model's own cut:
    for a stem cut the max-pool, not ``conv1``; for DenseNet's full cut the ReLU after ``norm5``).
    """
    names = {id(m): n for n, m in model.named_modules()}
    if target_layer is None:
        if not hasattr(model, "last_block"):
            raise ConfigError("gradcam: target_layer is required for a model that is not a TTLModel")
        target_layer = model.last_block()
    if isinstance(target_layer, str):
        blocks = dict(model.block_modules()) if hasattr(model, "block_modules") else {}
        own_cut = getattr(getattr(model, "cut", None), "name", None)
        if target_layer in blocks and target_layer == own_cut:
            target_layer = model.last_block()
        elif target_layer in blocks:
            target_layer = blocks[target_layer][-1]
        else:
            mods = dict(model.named_modules())
            if target_layer not in mods:
                raise ConfigError(f"gradcam: no layer {target_layer!r} in the model; use a kept cut "
                                  f"({', '.join(blocks) or 'none'}) or a module name")
            target_layer = mods[target_layer]
    if id(target_layer) not in names:
        raise ConfigError("gradcam: target_layer is not a module of the model")
    return target_layer, names[id(target_layer)]


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Restore every module's train/eval flag and every parameter's ``.grad`` and
    ``requires_grad`` on exit (pytorch_grad_cam changes the first two)."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.grad, p.requires_grad) for p in model.parameters()]
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        for p, grad, req in params:
            p.grad = grad
            p.requires_grad_(req)


def _cam_method(method: str) -> CamMethod:
    return METHODS.lookup(method.lower())


def _probabilities(logits: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=1)


def _chunks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, max(1, size)):
        yield slice(i, min(n, i + max(1, size)))


# ---------------------------------------------------------------------------------------------
# CAMs
# ---------------------------------------------------------------------------------------------

def gradcam(model: nn.Module, images: torch.Tensor, target_layer: nn.Module | str | None = None,
            method: str = "gradcam", targets: Sequence[int] | np.ndarray | None = None,
            device: str | torch.device = "cpu", batch_size: int = 16,
            mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
            image_weight: float = 0.5, activation: str = "softmax") -> CamResult:
    """Class activation maps of ``model`` for normalised ``images`` (N, 3, H, W).

    ``target_layer``: None (the last kept block, ``model.last_block()``), a cut name, a module
    name or a module. ``method``: one of :data:`METHODS`. ``targets``: classes to explain (default:
    the predicted class). ``mean``/``std`` undo the normalisation for the overlays (default: the
    model's source normalisation). The model's modes, gradients and device are left as found.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    spec = _cam_method(method)
    x_all = torch.as_tensor(images).detach().float()
    if x_all.ndim != 4:
        raise ConfigError(f"gradcam: images must be (N, 3, H, W), got shape {tuple(x_all.shape)}")
    n = x_all.shape[0]
    if targets is not None and len(targets) != n:
        raise ConfigError(f"gradcam: {len(targets)} targets for {n} images")
    layer, layer_name = resolve_target_layer(model, target_layer)
    dev = torch.device(device)
    home = next(model.parameters()).device
    heat, chosen, scores = [], [], []
    with preserved_state(model), torch.enable_grad():
        model.to(dev)
        try:
            for sl in _chunks(n, batch_size):
                x = x_all[sl].to(dev).requires_grad_(True)  # gradients reach frozen blocks too
                with torch.no_grad():
                    model.eval()
                    probs = _probabilities(model(x).float(), activation)
                t = (probs.argmax(1).cpu().numpy() if targets is None
                     else np.asarray(targets[sl], dtype=np.int64))
                cam = spec.make(model, layer, batch_size)
                try:  # not `with`: the package's __exit__ swallows IndexError
                    maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in t])
                finally:
                    cam.activations_and_grads.release()
                heat.append(np.asarray(maps, dtype=np.float32))
                chosen.append(t.astype(np.int64))
                scores.append(probs[torch.arange(len(t)), torch.as_tensor(t)].cpu().numpy())
        finally:
            model.to(home)
    heatmaps = np.clip(np.concatenate(heat), 0.0, 1.0).astype(np.float32)
    disp = to_display(x_all, *_model_norm(model, mean, std))
    overlays = np.stack([show_cam_on_image(disp[i], heatmaps[i], use_rgb=True, image_weight=image_weight)
                         for i in range(n)]) if n else np.zeros((0, *heatmaps.shape[1:], 3), np.uint8)
    cut = getattr(getattr(model, "cut", None), "name", None)
    return CamResult(heatmaps, overlays, np.concatenate(chosen), method.lower(), layer_name,
                     np.concatenate(scores).astype(np.float32), cut)


# ---------------------------------------------------------------------------------------------
# faithfulness
# ---------------------------------------------------------------------------------------------

def _baseline_images(x: torch.Tensor, kind: str, blur_sigma: float | None) -> torch.Tensor:
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    from torchvision.transforms.functional import gaussian_blur

    h, w = x.shape[-2:]
    sigma = float(blur_sigma) if blur_sigma is not None else max(h, w) / 8.0
    k = 2 * int(np.ceil(3 * sigma)) + 1
    k = min(k, 2 * (min(h, w) // 2) - 1)  # reflect padding must stay inside the image
    return gaussian_blur(x, [max(k, 1), max(k, 1)], [sigma, sigma])


def _ranks(order: np.ndarray) -> np.ndarray:
    """rank[p] = position of pixel p in ``order`` (0 = first replaced)."""
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank


def _curves(model: nn.Module, x: torch.Tensor, base: torch.Tensor, ranks: np.ndarray, counts: np.ndarray,
            targets: np.ndarray, mode: str, activation: str, batch_size: int) -> np.ndarray:
    """(N, S) target probabilities of the perturbed images; ``ranks`` (N, H*W)."""
    n, _, h, w = x.shape
    steps = len(counts)
    out = np.zeros((n, steps), np.float32)
    jobs = [(i, k) for i in range(n) for k in range(steps)]
    rank_t = torch.as_tensor(ranks).view(n, 1, h, w)
    with torch.no_grad():
        for sl in _chunks(len(jobs), batch_size):
            idx = torch.tensor([i for i, _ in jobs[sl]])
            cnt = torch.tensor([int(counts[k]) for _, k in jobs[sl]]).view(-1, 1, 1, 1)
            mask = (rank_t[idx] < cnt).to(x.device)  # the first `cnt` pixels of the order
            xi, bi = x[idx.to(x.device)], base[idx.to(x.device)]
            batch = torch.where(mask, bi, xi) if mode == "deletion" else torch.where(mask, xi, bi)
            probs = _probabilities(model(batch).float(), activation)
            p = probs[torch.arange(len(idx)), torch.as_tensor(targets[idx.numpy()])].cpu().numpy()
            for j, (i, k) in enumerate(jobs[sl]):
                out[i, k] = p[j]
    return out


def faithfulness(model: nn.Module, images: torch.Tensor, heatmaps: np.ndarray,
                 targets: Sequence[int] | np.ndarray | None = None, steps: int = 10, mode: str = "deletion",
                 baseline: str = "blur", n_random: int = 3, seed: int = 0, device: str | torch.device = "cpu",
                 batch_size: int = 64, blur_sigma: float | None = None, activation: str = "softmax",
                 road: bool = False) -> Faithfulness:
    """Deletion/insertion curve of the heatmaps' pixel order against random orders.

    Deletion: replace the top ``k/steps`` most salient pixels (k = 0..steps) by the ``baseline``
    (``"blur"``: a Gaussian blur of the image, ``"mean"``: the image's channel means, ``"zero"``:
    zero in normalised space) and record the target class probability; the area under the curve
    is lower for a faithful map. Insertion starts from the baseline and puts the most salient
    pixels back (higher is better). Ties in a heatmap are broken at random (seeded), so flat
    regions carry no raster-order bias. ``road=True`` adds the package's ROAD combined score
    (``pytorch_grad_cam.metrics.road``; higher is better) when it runs on these inputs.
    """
    if mode not in MODES:
        raise ConfigError(f"faithfulness: mode must be one of {', '.join(MODES)}, not {mode!r}")
    if baseline not in BASELINES:
        raise ConfigError(f"faithfulness: baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")
    if steps < 1 or n_random < 1:
        raise ConfigError("faithfulness: steps and n_random must be >= 1")
    x = torch.as_tensor(images).detach().float()
    heat = np.asarray(heatmaps, dtype=np.float64)
    if x.ndim != 4 or heat.shape != (x.shape[0], *x.shape[-2:]):
        raise ConfigError(f"faithfulness: heatmaps {heat.shape} do not match images {tuple(x.shape)}")
    n, _, h, w = x.shape
    rng = np.random.default_rng(seed)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * h * w).astype(np.int64)
    dev = torch.device(device)
    home = next(model.parameters()).device
    road_scores, road_error = None, None
    with preserved_state(model):
        model.to(dev)
        model.eval()
        try:
            xd = x.to(dev)
            with torch.no_grad():
                probs = _probabilities(model(xd).float(), activation) if n else torch.zeros(0, 1)
            t = probs.argmax(1).cpu().numpy() if targets is None else np.asarray(targets, dtype=np.int64)
            base = _baseline_images(xd, baseline, blur_sigma)
            flat = heat.reshape(n, -1)
            cam_ranks = np.stack([_ranks(np.lexsort((rng.random(h * w), -flat[i]))) for i in range(n)])
            curves = _curves(model, xd, base, cam_ranks, counts, t, mode, activation, batch_size)
            rand = np.zeros_like(curves)
            for _ in range(n_random):
                r = np.stack([_ranks(rng.permutation(h * w)) for _ in range(n)])
                rand += _curves(model, xd, base, r, counts, t, mode, activation, batch_size)
            rand /= n_random
            if road:
                road_scores, road_error = _road(model, xd, heat, t, batch_size, seed)
        finally:
            model.to(home)
    auc = np.trapezoid(curves, fractions, axis=1)
    rauc = np.trapezoid(rand, fractions, axis=1)
    return Faithfulness(mode, baseline, fractions, curves, rand, auc.astype(np.float64), rauc.astype(np.float64),
                        t, road_scores, road_error)


def _road(model: nn.Module, x: torch.Tensor, heat: np.ndarray, targets: np.ndarray, batch_size: int,
          seed: int) -> tuple[np.ndarray | None, str | None]:
    """ROAD combined score per image, or (None, why) when the package's metric fails here."""
    try:
        from pytorch_grad_cam.metrics.road import ROADCombined
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

        torch.manual_seed(seed)  # ROAD's imputer adds noise
        metric = ROADCombined(percentiles=[20, 40, 60, 80])
        out = []
        with warnings.catch_warnings():  # the package feeds torch tensors to np.percentile
            warnings.simplefilter("ignore", DeprecationWarning)
            for sl in _chunks(len(x), batch_size):
                tg = [ClassifierOutputSoftmaxTarget(int(c)) for c in targets[sl]]
                out.append(np.asarray(metric(x[sl], heat[sl].astype(np.float32), tg, model), dtype=np.float64))
        return np.concatenate(out), None
    except Exception as exc:  # the metric is optional: report why it did not run
        return None, f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------

def plot_cams(images_display: np.ndarray, results: Mapping[str, CamResult], n: int | None = None,
              class_names: Sequence[str] | None = None, cell: float = 1.8, show_image: bool = True) -> Any:
    """A grid: one row per image, the image then one column per result (a cut or a method).

    ``images_display``: float RGB (N, H, W, 3) in [0, 1] (see :func:`to_display`). Each cell shows
    the overlay with the explained class and its probability. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ConfigError("plot_cams: results is empty")
    imgs = np.asarray(images_display)
    rows = min(len(imgs), *(len(r) for r in results.values()))
    rows = rows if n is None else min(rows, n)
    if rows < 1:
        raise ConfigError("plot_cams: no image to draw")
    cols = len(results) + int(show_image)
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, cell * rows), squeeze=False)
    for i in range(rows):
        c0 = 0
        if show_image:
            axes[i, 0].imshow(np.clip(imgs[i], 0, 1))
            if i == 0:
                axes[i, 0].set_title("image", fontsize=9)
            c0 = 1
        for j, (label, res) in enumerate(results.items()):
            ax = axes[i, c0 + j]
            ax.imshow(res.overlays[i])
            if i == 0:
                ax.set_title(str(label), fontsize=9)
            cls = int(res.targets[i])
            name = class_names[cls] if class_names is not None and cls < len(class_names) else str(cls)
            prob = f" {res.scores[i]:.2f}" if len(res.scores) > i else ""
            ax.text(0.02, 0.02, f"{name}{prob}", transform=ax.transAxes, fontsize=7, color="white",
                    bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "linewidth": 0})
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_faithfulness(results: Mapping[str, Faithfulness], ax: Any = None) -> Any:
    """Mean deletion/insertion curves per result, each with its random-order curve dashed."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, f in results.items():
        line, = ax.plot(f.fractions, f.curves.mean(0), marker="o", ms=3, label=f"{label} (AUC {f.mean_auc:.3f})")
        ax.plot(f.fractions, f.random_curves.mean(0), linestyle="--", color=line.get_color(),
                label=f"{label} random (AUC {f.mean_random_auc:.3f})")
    mode = next(iter(results.values())).mode if results else "deletion"
    ax.set_xlabel(f"fraction of pixels {'removed' if mode == 'deletion' else 'inserted'}")
    ax.set_ylabel("P(target class)")
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False, fontsize=7)
    return ax
