"""The numbers quoted in the book's discussion are those of the committed results.

The discussion is prose, so its numbers are typed by hand; this test recomputes each quoted phrase
from the CSV/JSON files under ``results/`` and fails when a re-run of the book changed a number
that the prose still quotes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "results" / "quick"
DISCUSSION = ROOT / "book" / "discussion.md"


@pytest.fixture(scope="module")
def text() -> str:
    return re.sub(r"\s+", " ", DISCUSSION.read_text())


def _csv(rel: str) -> pd.DataFrame:
    return pd.read_csv(QUICK / rel)


def _phrases() -> list[str]:
    bench = _csv("05_truncation_benchmark/benchmark.csv").set_index("strategy")
    ttl, full, tf = bench.loc["ttl"], bench.loc["full"], bench.loc["transfusion"]
    delong = _csv("05_truncation_benchmark/delong_ttl_vs_full.csv").iloc[0]
    search = _csv("05_truncation_benchmark/search_vs_sweep.csv").iloc[0]
    best = _csv("02_feature_transferability/best_cuts.csv")
    sweep = _csv("02_feature_transferability/ttl_sweep.csv")
    probe = _csv("02_feature_transferability/probe.csv")
    sim = _csv("03_svcca/pretrained_vs_finetuned.csv")
    faith = _csv("04_gradcam/faithfulness.csv").set_index("model")

    def peak(dataset: str) -> pd.Series:
        return best[(best.dataset == dataset) & (best.method == "TTL finetuned")].iloc[0]

    low, mid = peak("phantom-low"), peak("phantom-mid")
    phrases = [
        f"TTL cut after `layer2.1` reached a test AUROC of {ttl.test_auroc_mean:.3f} (mean of two seeds, "
        f"sd {ttl.test_auroc_sd:.3f}) against {full.test_auroc_mean:.3f} (sd {full.test_auroc_sd:.3f}) "
        "for full transfer learning",
        f"on seed 0 gives {delong.auc_a:.3f} against {delong.auc_b:.3f} (z = {delong.z:.1f}, "
        f"p < 1e-{int(-math.log10(delong.p_value))}, {int(delong.n)} test images)",
        f"peaks at `{low.best_cut}` on `phantom-low` ({low.best_auroc:.3f})",
        f"`phantom-mid` peaks at `{mid.best_cut}` ({mid.best_auroc:.3f})",
        f"TTL(`layer2.1`) {ttl.test_auroc_mean:.3f} test AUROC with {ttl.params / 1e6:.2f} M parameters "
        f"({ttl.params / full.params:.0%} of the {full.params / 1e6:.2f} M of the full ResNet-18) and "
        f"{ttl.flops / 1e6:.0f} MFLOPs per 64 px image ({ttl.flops / full.flops:.0%} of {full.flops / 1e6:.0f})",
        f"{tf.test_auroc_mean:.3f} (sd {tf.test_auroc_sd:.3f}) with {tf.params / 1e6:.2f} M parameters; "
        f"full TL {full.test_auroc_mean:.3f}, LWFT (frozen up to `layer2.1`) "
        f"{bench.loc['lwft'].test_auroc_mean:.3f}, scratch {bench.loc['scratch'].test_auroc_mean:.3f}, "
        f"linear probe on the full frozen network {bench.loc['linear_probe'].test_auroc_mean:.3f}",
        f"(TTL {ttl.test_auroc_ci_low:.3f}-{ttl.test_auroc_ci_high:.3f}, "
        f"TransFusion {tf.test_auroc_ci_low:.3f}-{tf.test_auroc_ci_high:.3f}:",
        f"with {int(search.search_trainings)} trainings instead of {int(search.sweep_trainings)} "
        f"({search.seconds_ratio:.1f} of the sweep's CPU time)",
        f"chose `{search.search_choice}` on validation AUROC, the exhaustive sweep's best cut too "
        f"(rank {int(search.rank_in_sweep)} of {int(search.n_cuts)})",
    ]
    # chapter 2: where each phantom level stops or starts to be learned
    low_deep = sweep[(sweep.dataset == "phantom-low") & (sweep.cut_index >= 5)].test_auroc
    assert 0.50 <= low_deep.min() and low_deep.max() <= 0.60, "prose: 0.50-0.60 from layer3.0 on"
    high = sweep[(sweep.dataset == "phantom-high") & (sweep.cut_index >= 3)].test_auroc
    assert high.min() >= 0.975, "prose: phantom-high at 0.98-1.00 from layer2.0 on"
    # chapter 3: similarity between the source and the finetuned network, against random features
    svcca, cka = (sim[sim.measure == m].set_index("block") for m in ("svcca", "cka"))

    def band(m: pd.DataFrame) -> str:
        below = m.loc["stem":"layer3.1"].baseline_mean
        return f"{below.min():.2f}-{below.max():.2f}"

    def top(m: pd.DataFrame) -> str:
        return f"{m.value['layer4.0']:.2f}/{m.value['layer4.1']:.2f}"

    phrases += [
        f"mean SVCCA between the source and the finetuned network falls from {svcca.value['stem']:.2f} at the "
        f"stem to {svcca.value['layer3.1']:.2f} at `layer3.1`, far above the random-feature band ({band(svcca)})",
        f"it is {top(svcca)}, *below* the random band ({svcca.baseline_mean['layer4.0']:.2f})",
        f"Linear CKA falls from {cka.value['stem']:.2f} (stem) to {cka.value['layer3.1']:.2f} (`layer3.1`) "
        f"against a band of {band(cka)}",
        f"ends at {top(cka)} for the `layer4` blocks against a band of {cka.baseline_mean['layer4.0']:.2f}",
    ]
    # chapter 4: deletion faithfulness
    l11, whole = faith.loc["ttl(layer1.1)"], faith.loc["full"]
    phrases.append(f"for the `layer1.1` model (area {l11.auc:.2f} against {l11.random_auc:.2f}; "
                   f"{l11.beats_random * 100:.0f}% of images)")
    phrases.append(f"worse than random for the full network ({whole.auc:.2f} against {whole.random_auc:.2f})")
    # chapter 2: linear probes, fractal against random-init features
    wide = probe.pivot_table(index=["dataset", "cut"], columns="source", values="auroc")
    wins = (wide.fractal > wide.scratch).groupby(level="dataset").sum()
    stem_low = wide.loc[("phantom-low", "stem")]
    phrases.append(f"beat random-init features at {wins['phantom-high']} of 9 cuts on `phantom-high` and "
                   f"{wins['phantom-mid']} of 9 on `phantom-mid`, but at only {wins['phantom-low']} of 9 on "
                   f"`phantom-low`, where random stem features probe best ({stem_low.scratch:.2f} against "
                   f"{stem_low.fractal:.2f})")
    return phrases


def _gpu_phrases() -> list[str]:
    infer = json.loads((ROOT / "results/bench/h100-run2/infer_gpu.json").read_text())["rows"]
    r18 = {r["cut"]: r for r in infer if r["arch"] == "resnet18"}
    sweep = json.loads((ROOT / "results/bench/h100-run2/sweep_resnet50.json").read_text())
    h, e, c = sweep["hierarchical"], sweep["exhaustive"], sweep["compare"]
    return [
        f"ResNet-18 batch-1 latency falling from {r18['layer4.1']['latency_ms']:.2f} ms (full) to "
        f"{r18['layer2.1']['latency_ms']:.2f} ms (`layer2.1`)",
        f"the search chose `{h['chosen_cut']}` (test AUROC {h['chosen_test']:.3f}) while the sweep's best was "
        f"`{e['chosen_cut']}` ({e['chosen_test']:.3f}), rank {c['rank_in_sweep']} of {c['n_cuts']}, with "
        f"{h['cost']['trainings']} trainings instead of {e['cost']['trainings']} ({h['wall_s']:.0f} s against "
        f"{e['wall_s']:.0f} s of wall time)",
    ]


def test_every_quoted_number_matches_the_committed_results(text):
    missing = [p for p in _phrases() + _gpu_phrases() if p not in text]
    assert not missing, "book/discussion.md does not say:\n" + "\n".join(missing)
