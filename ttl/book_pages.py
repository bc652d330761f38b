"""The generated parts of the book's markdown pages, written when the book is staged.

``ttl book`` calls :func:`write_generated` with the profile's results folder. It writes, under the
staged ``book/_generated/``, what ``book/intro.md`` and ``book/sources.md`` include:

- ``verdicts.md``: the claims with their verdict and this run's evidence (:func:`verdict_table`);
- ``key_figure.md`` (+ ``key_figure.png``): the landing page's figure, or a note when not run;
- ``fractals.png`` and ``source_weights.md``: the shipped fractal source;

and returns MyST substitutions (``{{ run_profile }}``, ``{{ run_hardware }}``, ...) for the pages.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ttl.experiments.figures import describe_hardware, table_markdown

REPO_ROOT = Path(__file__).resolve().parent.parent
GENERATED = Path("book") / "_generated"
KEY_FIGURE = ("02_feature_transferability", "transferability_curves.png")
FRACTAL_CACHE = Path("results") / "sources" / "fractal_examples.png"
#: The verdicts of book/discussion.md, which judges the build of DISCUSSION_PROFILE.
DISCUSSION_PROFILE = "quick"
VERDICTS = {
    1: "held here",
    2: "held here (a tie with TransFusion)",
    3: "not tested (no real medical data in this build)",
    4: "held here",
    5: "held on the quick profile; not in the GPU sweep",
}
CLAIMS = {
    1: "Finetuning every layer can be suboptimal; the level worth reusing depends on the task",
    2: "TTL matches or beats full TL, LWFT and TransFusion with smaller, faster models",
    3: "Most medical tasks need low- to mid-level features",
    4: "In finetuning, bottom blocks change little, top blocks most",
    5: "A two-stage search finds a good cut cheaply",
}


def _csv(results: Path, notebook: str, name: str) -> pd.DataFrame | None:
    path = results / notebook / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else None


def _evidence(results: Path) -> dict[int, str]:
    """One sentence of this run's numbers per claim, from the chapters' CSV tables."""
    ev: dict[int, str] = {}
    best = _csv(results, "02_feature_transferability", "best_cuts")
    if best is not None:
        ttl = best[best["method"] == "TTL finetuned"].sort_values("dataset")
        ev[1] = "best TTL cut: " + "; ".join(f"{r.dataset} {r.best_cut} ({r.best_auroc:.3f})"
                                               for r in ttl.itertuples())
    bench = _csv(results, "05_truncation_benchmark", "benchmark")
    if bench is not None:
        full = bench[bench["strategy"] == "full"]
        ttl_rows = bench[bench["strategy"] == "ttl"]
        if len(full) and len(ttl_rows):
            f, t = full.iloc[0], ttl_rows.sort_values("test_auroc_mean").iloc[-1]
            ev[2] = (f"test AUROC {t['label']} {t['test_auroc_mean']:.3f} vs full TL "
                     f"{f['test_auroc_mean']:.3f}, with {t['params'] / f['params']:.0%} of the parameters")
    ev[3] = "no real medical dataset in this build"
    sim = _csv(results, "03_svcca", "pretrained_vs_finetuned")
    if sim is not None:
        s = sim[sim["measure"] == "svcca"]
        if len(s):
            ev[4] = (f"SVCCA pretrained vs finetuned: {s.iloc[0]['block']} {s.iloc[0]['value']:.2f}, "
                     f"{s.iloc[-1]['block']} {s.iloc[-1]['value']:.2f} (random baseline "
                     f"{s.iloc[-1]['baseline_mean']:.2f})")
    search = _csv(results, "05_truncation_benchmark", "search_vs_sweep")
    if search is not None and len(search):
        r = search.iloc[0]
        ev[5] = (f"search chose {r['search_choice']} (rank {int(r['rank_in_sweep'])} of {int(r['n_cuts'])}) "
                 f"with {int(r['search_trainings'])} of {int(r['sweep_trainings'])} trainings")
    return ev


def verdict_table(results: Path, profile: str) -> pd.DataFrame:
    """Claim, verdict and this run's evidence (``–`` where the run has no such table)."""
    ev = _evidence(Path(results))
    judged = profile == DISCUSSION_PROFILE
    rows = [{"claim": f"{k}. {text}",
             "verdict": VERDICTS[k] if judged else f"not judged for '{profile}'",
             "this run": ev.get(k)} for k, text in CLAIMS.items()]
    return pd.DataFrame(rows, columns=["claim", "verdict", "this run"])


def run_facts(results: Path, profile: str, profile_hardware: str = "") -> dict[str, str]:
    """Substitutions describing the run behind the book, from ``<results>/book_run.json``."""
    facts = {"run_profile": profile, "run_hardware": "not recorded", "run_profile_hardware":
             profile_hardware or "not stated", "run_wall_time": "not recorded", "run_commit": "not recorded"}
    record = Path(results) / "book_run.json"
    if record.is_file():
        doc = json.loads(record.read_text())
        prov = doc.get("provenance", {})
        if prov.get("hardware"):
            facts["run_hardware"] = describe_hardware(prov["hardware"])
        executed = [n.get("executed_seconds") or 0 for n in doc.get("notebooks", [])]
        if any(executed):
            facts["run_wall_time"] = f"{sum(executed) / 60:.1f} minutes"
        git = prov.get("git") or {}
        if git.get("commit"):
            facts["run_commit"] = git["commit"][:7] + (" (with uncommitted changes)" if git.get("dirty") else "")
    return facts


def key_figure(results: Path, out_dir: Path, chapters: Sequence[str], facts: dict[str, str]) -> str:
    """MyST for the landing page's figure (copied beside it), or a note when it was not made."""
    notebook, png = KEY_FIGURE
    src = Path(results) / notebook / png
    if notebook not in chapters or not src.is_file():
        return (":::{note}\nThe key figure comes from the feature-transferability chapter, which "
                f"this build (profile `{facts['run_profile']}`) does not include.\n:::\n")
    shutil.copy2(src, out_dir / "key_figure.png")
    return (f":::{{figure}} _generated/key_figure.png\n:name: fig-key-result\n"
            ":alt: Line plots of test AUROC against the cut point, one panel per phantom level, for "
            "linear probes and finetuned truncated models.\n\n"
            f"Test AUROC at every cut of {{doc}}`executed/{notebook}`, per phantom level (profile "
            f"`{facts['run_profile']}`, {facts['run_hardware']}). Where the curve peaks is the cut a "
            "task needs.\n:::\n")


def fractal_examples(path: Path, n_classes: int = 8, per_class: int = 2, size: int = 112) -> Path:
    """Render fractal images like the source's pretraining set (cached at ``path``)."""
    if path.is_file():
        return path
    import matplotlib

    matplotlib.use("Agg")
    from ttl.experiments.plots import example_grid, house_style
    from ttl.pretrain.fractal import make_dataset

    from ttl.provenance import stopwatch, write_result

    house_style()
    with stopwatch() as t:
        ds = make_dataset(n_classes, per_class, size, seed=0)
    images = ds.images[:, 0].numpy()
    fig = example_grid(images, [f"class {int(c)}" for c in ds.labels], cols=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    params = {"n_classes": n_classes, "images_per_class": per_class, "size": size, "seed": 0}
    write_result(path.with_suffix(".json"), {"figure": path.name, "made_by": "ttl.book_pages.fractal_examples"},
                 params, wall_time_s=t["seconds"])
    return path


def source_weights(manifest: Path) -> str:
    """A numbered table of the shipped source weights from ``weights/manifest.json``."""
    doc = json.loads(Path(manifest).read_text())
    rows = [{"file": f"weights/{e['file']}", "classes x images": f"{e.get('n_classes')} x {e.get('images_per_class')}",
             "epochs": e.get("epochs"), "held-out accuracy": e.get("pretrain_val_accuracy"),
             "wall time (s)": e.get("wall_time_s"),
             "GPU": (e.get("hardware") or {}).get("gpu") or "none"}
            for e in doc.values() if isinstance(e, dict) and "arch" in e]
    df = pd.DataFrame(rows)
    return table_markdown(df, "source_weights", "The shipped fractal source weights, pretrained at "
                          "112 px (`weights/manifest.json`).", formats={"wall time (s)": "{:.0f}"})


def write_generated(stage: Path, results: Path, profile: str, chapters: Sequence[str],
                    profile_hardware: str = "", root: Path = REPO_ROOT) -> dict[str, str]:
    """Write the generated page parts under ``stage/book/_generated``; return the substitutions."""
    out = Path(stage) / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    facts = run_facts(results, profile, profile_hardware)
    (out / "verdicts.md").write_text(
        table_markdown(verdict_table(results, profile), "verdicts",
                       f"The paper's claims and what this build (profile `{profile}`) found."))
    (out / "key_figure.md").write_text(key_figure(results, out, chapters, facts))
    shutil.copy2(fractal_examples(Path(root) / FRACTAL_CACHE), out / "fractals.png")
    (out / "source_weights.md").write_text(source_weights(Path(root) / "weights" / "manifest.json"))
    return facts

