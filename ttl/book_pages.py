"""The generated parts of the book's markdown pages, written when the book is staged.

``ttl book`` calls :func:`write_generated` with the profile's results folder. It writes, under the
staged ``book/_generated/``, what ``book/intro.md`` and ``book/sources.md`` include:

- ``verdicts.md``: the claims with their verdict and this run's evidence (:func:`verdict_table`);
- ``key_figure.md`` (+ ``key_figure.png``): the landing page's figure, or a note when not run;
- ``fractals.png`` and ``source_weights.md``: the shipped fractal source;
- ``pretraining.png`` and ``pretraining.md``: the curve of the pretraining recipe run on a CPU at
  reduced scale (``results/sources/pretraining_cpu.json``), with its facts;

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
from ttl.resources import in_checkout, shipped_root, work_root

SOURCE_ROOT = shipped_root()

GENERATED = Path("book") / "_generated"
KEY_FIGURE = ("02_feature_transferability", "finetune_curves.png")
FRACTAL_CACHE = Path("results") / "sources" / "fractal_examples.png"
PRETRAINING_RECORD = Path("results") / "sources" / "pretraining_cpu.json"
# the shipped recipe (SGD, warm-up + cosine, label smoothing) at a size two CPU cores train in minutes
PRETRAINING_COMMAND = ("ttl pretrain --arch resnet18 --classes 32 --images-per-class 96 --size 64 --epochs 15 "
                       "--batch 64 --optimizer sgd --val-per-class 16 --device cpu --seed 0")
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


def _claim1(results: Path) -> tuple[str, str] | None:
    best = _csv(results, "02_feature_transferability", "best_cuts")
    comp = _csv(results, "05_truncation_benchmark", "comparisons")
    if best is None or comp is None:
        return None
    vs_full = comp[comp["other"] == "full"]
    better = vs_full[vs_full["ci_low"] > 0]
    cuts = "; ".join(f"{r.dataset} {r.cut}" for r in best.sort_values("dataset").itertuples())
    verdict = "held" if len(better) else "not shown"
    return verdict, (f"cut chosen on validation: {cuts}; TTL above full TL (interval > 0) on "
                     f"{len(better)} of {len(vs_full)} levels")


def _claim2(results: Path) -> tuple[str, str] | None:
    comp = _csv(results, "05_truncation_benchmark", "comparisons")
    if comp is None:
        return None
    rivals = comp[comp["other"].str.match(r"^(full|lwft|transfusion)")]
    held, refuted = int((rivals["verdict"] == "held").sum()), int((rivals["verdict"] == "refuted").sum())
    verdict = ("held" if held == len(rivals) else f"refuted in {refuted} of {len(rivals)}" if refuted
               else "partly held" if held else "inconclusive")
    return verdict, (f"'not worse' held in {held} of {len(rivals)} (level, rival) comparisons, "
                     f"refuted in {refuted}")


def _claim4(results: Path) -> tuple[str, str] | None:
    sim = _csv(results, "03_svcca", "pretrained_vs_finetuned")
    if sim is None:
        return None
    sv, ck = sim[sim["measure"] == "svcca"], sim[sim["measure"] == "cka"]
    excess = (sv["value"] - sv["null_mean"]).to_numpy()
    falls = excess[-1] < excess[0]
    least = ck.loc[ck["value"].idxmin(), "block"]
    return ("held (SVCCA); CKA: see chapter" if falls else "not shown",
            f"SVCCA above its permutation null: {excess[0]:.2f} at {sv.iloc[0]['block']}, {excess[-1]:.2f} at "
            f"{sv.iloc[-1]['block']}; lowest CKA at {least}")


def _claim5(results: Path) -> tuple[str, str] | None:
    search = _csv(results, "05_truncation_benchmark", "search")
    if search is None or not len(search):
        return None
    agree = int((search["search choice"] == search["candidates choice"]).sum())
    return ("held" if agree == len(search) else "partly held" if agree else "not held",
            f"search agreed with the validation choice on {agree} of {len(search)} levels, "
            f"{search['trainings'].mean():.1f} trainings per level")


def verdict_table(results: Path, profile: str) -> pd.DataFrame:
    """Claim, verdict and this run's evidence, derived by fixed rules from the chapters' CSV tables
    (``not run`` where the build has no such table); no verdict is typed by hand."""
    results = Path(results)
    found = {1: _claim1(results), 2: _claim2(results), 4: _claim4(results), 5: _claim5(results),
             3: ("not tested", "no real medical dataset in this build")}
    rows = [{"claim": f"{k}. {text}", "verdict": (found[k] or ("not run", "–"))[0],
             "this run": (found[k] or ("not run", "–"))[1]} for k, text in CLAIMS.items()]
    return pd.DataFrame(rows, columns=["claim", "verdict", "this run"])


def _fmt(x: float, digits: int = 3) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def evidence_facts(results: Path) -> dict[str, str]:
    """The discussion's numbers as MyST substitutions, computed from the chapters' CSV tables (so the
    prose quotes the run it is built with and never a typed number). Keys absent from this build's
    tables read ``not run``."""
    results = Path(results)
    facts: dict[str, str] = {}
    table = verdict_table(results, "")
    for k, row in zip(CLAIMS, table.itertuples()):
        facts[f"verdict_{k}"] = row.verdict
    best = _csv(results, "02_feature_transferability", "best_cuts")
    if best is not None:
        facts["best_cuts"] = "; ".join(f"`{r.dataset}` {r.cut}" for r in best.sort_values("dataset").itertuples())
    control = _csv(results, "02_feature_transferability", "ttl_vs_scratch")
    if control is not None:
        facts["control_held"] = f"{int((control['verdict'] == 'held').sum())} of {len(control)}"
    sweep = _csv(results, "02_feature_transferability", "ttl_sweep")
    bench_runs = _csv(results, "05_truncation_benchmark", "benchmark_runs")
    frames = [f for f in (sweep, bench_runs) if f is not None and "epochs_cap" in f]
    if frames:
        runs = pd.concat([f[["run_dir", "best_epoch", "epochs_cap", "stop_reason"]] for f in frames]).drop_duplicates("run_dir")
        facts["converged_share"] = f"{(runs['best_epoch'] < runs['epochs_cap'] - 1).mean():.0%}"
        facts["n_runs"] = str(len(runs))
        facts["stopped_early_share"] = f"{(runs['stop_reason'] == 'patience').mean():.0%}"
    probe = _csv(results, "02_feature_transferability", "probe_gap")
    if probe is not None:
        for src, g in probe.groupby("source"):
            facts[f"probe_{src}"] = f"{int(g['better'].sum())} of {int(g['cuts'].sum())}"
    comp = _csv(results, "05_truncation_benchmark", "comparisons")
    if comp is not None:
        rivals = comp[comp["other"].str.match(r"^(full|lwft|transfusion)")]
        facts["c2_held"] = f"{int((rivals['verdict'] == 'held').sum())} of {len(rivals)}"
        facts["c2_refuted"] = str(int((rivals["verdict"] == "refuted").sum()))
        vs_full = comp[comp["other"] == "full"]
        facts["c1_above_full"] = f"{int((vs_full['ci_low'] > 0).sum())} of {len(vs_full)}"
        facts["c2_vs_full"] = "; ".join(
            f"`{r.dataset}` {r.diff:+.3f} ({r.ci_low:+.3f} to {r.ci_high:+.3f})" for r in vs_full.itertuples())
        ctrl = comp[comp["other"].str.startswith("scratch(")]
        facts["bench_control"] = f"{int((ctrl['ci_low'] > 0).sum())} of {len(ctrl)}"
    bench = _csv(results, "05_truncation_benchmark", "benchmark")
    if bench is not None:
        ttl = bench[bench["strategy"] == "ttl"].set_index("dataset")
        full = bench[bench["strategy"] == "full"].set_index("dataset")
        share = (ttl["params"] / full["params"]).dropna()
        if len(share):
            facts["ttl_param_share"] = f"{share.min():.0%}–{share.max():.0%}" if share.min() != share.max() \
                else f"{share.min():.0%}"
        facts["bench_ttl"] = "; ".join(
            f"`{d}` {r['label']} {_fmt(r['test_auroc_mean'])} ({_fmt(r['test_auroc_ci_low'])}–"
            f"{_fmt(r['test_auroc_ci_high'])}) vs full TL {_fmt(full.loc[d, 'test_auroc_mean'])}"
            for d, r in ttl.sort_index().iterrows() if d in full.index)
    sim = _csv(results, "03_svcca", "pretrained_vs_finetuned")
    if sim is not None:
        sv, ck = sim[sim["measure"] == "svcca"], sim[sim["measure"] == "cka"]
        facts["svcca_first"] = f"{_fmt(sv.iloc[0]['value'])} (null {_fmt(sv.iloc[0]['null_mean'])}) at {sv.iloc[0]['block']}"
        facts["svcca_last"] = f"{_fmt(sv.iloc[-1]['value'])} (null {_fmt(sv.iloc[-1]['null_mean'])}) at {sv.iloc[-1]['block']}"
        facts["cka_lowest"] = f"{ck.loc[ck['value'].idxmin(), 'block']} ({_fmt(ck['value'].min())})"
    search = _csv(results, "05_truncation_benchmark", "search")
    if search is not None and len(search):
        agree = int((search["search choice"] == search["candidates choice"]).sum())
        facts["search_agree"] = f"{agree} of {len(search)}"
        facts["search_trainings"] = f"{search['trainings'].mean():.1f}"
        facts["search_evidence"] = (f"The search agreed with the choice among the candidate cuts on {agree} of "
                                    f"{len(search)} levels, with {search['trainings'].mean():.1f} trainings per "
                                    "level on average (chapter 5).")
    elif (Path(results) / "05_truncation_benchmark").is_dir():
        facts["search_evidence"] = ("The two-stage search was not run in this build: its profile sets `search` to "
                                    "false (chapter 5).")
    for key in ("best_cuts", "control_held", "converged_share", "n_runs", "stopped_early_share", "probe_imagenet",
                "probe_fractal", "c2_held", "c2_refuted", "c1_above_full", "c2_vs_full", "bench_control",
                "ttl_param_share", "bench_ttl", "svcca_first", "svcca_last", "cka_lowest", "search_agree",
                "search_trainings", "search_evidence"):
        facts.setdefault(key, "not run")
    return facts


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
    facts["run_training"] = training_note(Path(results) / TRAINING_RECORD)
    return facts


TRAINING_RECORD = "book_run_training.json"


def training_note(record: Path) -> str:
    """One sentence on the execution that trained the models, when the book's notebooks were executed
    again later and read those models back (``book_run_training.json``: that execution's own record)."""
    if not record.is_file():
        return "Every model was trained by this execution."
    doc = json.loads(record.read_text())
    seconds = sum(n.get("executed_seconds") or 0 for n in doc.get("notebooks", []))
    git = (doc.get("provenance", {}).get("git") or {})
    commit = git.get("commit", "")[:7] or "an unrecorded commit"
    dirty = " with uncommitted changes" if git.get("dirty") else ""
    return (f"The models it reads back were trained by an earlier execution of the same profile, which took "
            f"{seconds / 60:.1f} minutes of notebooks (commit {commit}{dirty}; `{TRAINING_RECORD}`).")


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
            "pretrained truncated models and the same truncated models trained from scratch.\n\n"
            f"Test AUROC of the network truncated at each cut and finetuned, from the pretrained source "
            f"(TTL) or from random initialisation, per phantom level ({{doc}}`executed/{notebook}`; profile "
            f"`{facts['run_profile']}`, {facts['run_hardware']}). Where the pretrained curve peaks is the cut a "
            "task needs; where it stands above the scratch curve, the pretrained features are what helps.\n:::\n")


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


def pretraining_curve(record: Path, out_dir: Path) -> str:
    """Draw ``pretraining.png`` from a ``ttl pretrain`` result (its per-epoch history) and return the
    markdown paragraph that goes with it: the run's size, final accuracies and time, read from the
    record; a note when the record is missing."""
    if not record.is_file():
        return (f"*(No pretraining record at `{record.name}`; to draw the curve: `{PRETRAINING_COMMAND}`, "
                f"then copy its `result.json` to `{PRETRAINING_RECORD}`.)*\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ttl.experiments.plots import house_style, plot_pretraining_curve
    from ttl.provenance import read_json

    doc = read_json(record)
    params = doc["provenance"]["params"]
    house_style()
    fig = plot_pretraining_curve(doc["history"], chance=doc["chance_accuracy"])
    fig.savefig(out_dir / "pretraining.png", dpi=150)
    plt.close(fig)
    last = doc["history"][-1]
    hardware = describe_hardware(doc["provenance"].get("hardware") or {})
    return (f"{params['n_classes']} classes of {params['images_per_class']} images at {params['size']} px, "
            f"{len(doc['history'])} epochs of {params['optimizer'].upper()} (batch {params['batch_size']}, "
            f"peak learning rate {params['lr']:g}, warm-up then cosine decay), seed {params['seed']}: after the "
            f"last epoch the network classifies {last['val_accuracy']:.0%} of held-out fractal instances "
            f"correctly (chance {doc['chance_accuracy']:.0%}; {last['train_accuracy']:.0%} of the augmented "
            f"training images), in {doc['provenance']['wall_time_s'] / 60:.0f} min on {hardware}.\n")


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
                    profile_hardware: str = "", root: Path = SOURCE_ROOT) -> dict[str, str]:
    """Write the generated page parts under ``stage/book/_generated``; return the substitutions."""
    out = Path(stage) / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    facts = {**run_facts(results, profile, profile_hardware), **evidence_facts(results)}
    (out / "verdicts.md").write_text(
        table_markdown(verdict_table(results, profile), "verdicts",
                       f"The paper's claims and what this build (profile `{profile}`) found."))
    (out / "key_figure.md").write_text(key_figure(results, out, chapters, facts))
    cached = Path(root) / FRACTAL_CACHE  # shipped; rendered into the work folder if absent
    shutil.copy2(fractal_examples(cached if cached.is_file() or in_checkout() else work_root() / FRACTAL_CACHE),
                 out / "fractals.png")
    (out / "source_weights.md").write_text(source_weights(Path(root) / "weights" / "manifest.json"))
    (out / "pretraining.md").write_text(pretraining_curve(Path(root) / PRETRAINING_RECORD, out))
    return facts

