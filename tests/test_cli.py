import json
import re
import subprocess
import sys

import pytest

from ttl.cli import main


def test_cuts_json(capsys):
    assert main(["cuts", "resnet50", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["cuts"]) == 17 and doc["cuts"][13]["name"] == "layer3.5"
    kept = [c["params_kept"] for c in doc["cuts"]]
    assert kept == sorted(kept)


def test_bad_input_exits_2_with_message(capsys):
    assert main(["cuts", "alexnet"]) == 2
    assert "unknown architecture 'alexnet'" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [[], ["cuts"], ["train"], ["evaluate"], ["probe"], ["search"], ["book"], ["data", "show"],
                                 ["pretrain"], ["bench", "infer"], ["bench", "train"], ["bench", "sweep"]])
def test_help_for_every_command(cmd):
    """Each command's help names the command and lists every option it parses, with its default."""
    import argparse

    from ttl.cli import build_parser

    out = subprocess.run([sys.executable, "-m", "ttl.cli", *cmd, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith(" ".join(["usage: ttl", *cmd]))
    parser = build_parser()
    for word in cmd:  # the sub-parser the words select
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    text = " ".join(out.stdout.split())
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        assert action.option_strings[-1] in text, f"{action.option_strings} missing from ttl {' '.join(cmd)} --help"
        if isinstance(action.default, (str, int, float)) and not isinstance(action.default, bool) and action.help:
            shown = re.search(rf"default:? {re.escape(str(action.default))}\b", text)
            assert shown, f"{action.option_strings}: default {action.default!r} not shown"


def test_bench_runs_tiny_on_cpu(capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "train", "--arch", "resnet18", "--cut", "layer1.1", "--size", "32", "--batch", "4",
                 "--steps", "2", "--warmup", "1", "--repeats", "3", "--dataset-images", "16", "--device", "cpu",
                 "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["real_img_s"] > 0 and res["bound_img_s"] > 0 and "CPU" in res["note"]
    assert res["repeats"] == len(res["real_samples"]) == len(res["bound_samples"]) == 3
    assert res["ratio"] == pytest.approx(res["real_img_s"] / res["bound_img_s"])
    assert json.loads(out.read_text())["provenance"]["params"]["arch"] == "resnet18"
    assert main(["bench", "infer", "--arch", "resnet18", "--cuts", "stem", "layer2.1", "--size", "32",
                 "--throughput-batch", "2", "--repeats", "2", "--warmup", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["cut"] for r in rows] == ["stem", "layer2.1"]
    assert rows[0]["flops"] < rows[1]["flops"] and rows[1]["flops_ratio"] < 1


def test_bench_sweep_tiny_on_cpu(capsys, tmp_path):
    assert main(["bench", "sweep", "--arch", "resnet18", "--dataset", "phantom-mid", "--source", "scratch",
                 "--epochs", "1", "--batch", "16", "--n-per-class", "8", "--size", "32", "--device", "cpu",
                 "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "sweep.json"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["exhaustive"]["cost"]["trainings"] == 9
    assert 4 <= res["hierarchical"]["cost"]["trainings"] < 9
    assert set(res["hierarchical"]["cuts_trained"]) <= set(res["exhaustive"]["cuts_trained"])
    assert json.loads((tmp_path / "sweep.json").read_text())["provenance"]["params"]["arch"] == "resnet18"


def test_train_then_evaluate_a_run_folder(capsys, tmp_path):
    run = tmp_path / "run"
    args = ["--dataset", "phantom-low", "--n-per-class", "8", "--data-size", "32"]
    assert main(["train", "--arch", "resnet18", "--strategy", "ttl", "--cut", "layer1.0", "--source", "scratch",
                 "--epochs", "1", "--batch", "8", "--device", "cpu", "--n-boot", "0", "--out", str(run),
                 *args, "--json"]) == 0
    captured = capsys.readouterr()
    trained = json.loads(captured.out)
    assert "epoch 1/1: train loss" in captured.err  # no terminal: one line per epoch instead of a bar
    assert main(["evaluate", str(run), "--device", "cpu", "--n-boot", "0", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["metrics"]["auroc"]["value"] == pytest.approx(trained["metrics"]["test"]["auroc"]["value"])
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    # one data option given: only it changes, every other recorded setting is kept
    assert main(["evaluate", str(run), "--device", "cpu", "--n-boot", "0", "--data-seed", "1", "--json"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["data"] == {"n_per_class": 8, "size": 32, "seed": 1}
    assert other["metrics"]["auroc"]["value"] != pytest.approx(evaluated["metrics"]["auroc"]["value"])
