"""``ttl data show`` / ``ttl data list``, ``ttl.data.summary`` and ``ttl.data.show.example_grid``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from ttl.commands import data as data_cmd
from ttl.data import ImageDataset, load, summary
from ttl.data.show import example_grid
from ttl.errors import TTLError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTL_CACHE", str(tmp_path / "cache"))


def _run(argv):
    parser = argparse.ArgumentParser(prog="ttl")
    data_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_show_json_counts_and_grid(tmp_path, capsys):
    out = tmp_path / "figs" / "grid.png"
    rc = _run(["data", "show", "phantom-high", "--n-per-class", "3", "--size", "32", "--json",
               "--out", str(out), "--n", "6", "--balance", "0.5"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"] == {s: {"symmetric": 3, "offset": 3} for s in ("train", "val", "test")}
    assert doc["image_shape"] == [1, 32, 32] and doc["synthetic"] is True and doc["grid"] == str(out)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 100 and im.height > 50
    assert not list(out.parent.glob("*.tmp"))


def test_show_table_one_split(capsys):
    rc = _run(["data", "show", "phantom-low", "--split", "val", "--n-per-class", "4", "--size", "32",
               "--label-noise", "0.25"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text and "grain-horizontal" in text and "val" in text
    total = [line for line in text.splitlines() if line.startswith("total")]
    assert total and total[0].split()[-1] == "8"


def test_list(capsys):
    assert _run(["data", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["chexpert"]["registration"] is True and rows["phantom-mid"]["kind"] == "phantom"


def test_errors_are_ttl_errors(tmp_path):
    with pytest.raises(TTLError, match="pass root="):
        _run(["data", "show", "chexpert"])
    with pytest.raises(TTLError, match="unknown override"):  # contrast is a phantom option
        _run(["data", "show", "shenzhen-cxr", "--root", str(tmp_path), "--contrast", "2"])


def test_cli_main_exit_code_2(capsys):
    cli = pytest.importorskip("ttl.cli")
    if "data" not in getattr(cli, "COMMAND_MODULES", ()):
        pytest.skip("ttl.cli does not wire the data command")
    assert cli.main(["data", "show", "no-such-dataset"]) == 2
    assert "unknown dataset 'no-such-dataset'" in capsys.readouterr().err


def test_summary_and_example_grid():
    ds = load("phantom-mid", split="test", n_per_class=5, size=32, balance=0.3, progress=False)
    table = summary(ds)
    assert list(table["class"]) == ["swirl-clockwise", "swirl-anticlockwise"] and list(table["count"]) == [7, 3]
    assert table["fraction"].sum() == pytest.approx(1.0)
    fig = example_grid(ds, n=6)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 6
    titles = [ax.get_title() for ax in shown]
    assert titles.count("swirl-anticlockwise") == 3 and titles.count("swirl-clockwise") == 3  # spread over classes
    rgb = ImageDataset(np.zeros((3, 3, 8, 8), np.uint8), np.array([[1, 0], [0, 0], [1, 1]], np.float32),
                       ["A", "B"], "multilabel", "toy")
    assert list(summary(rgb)["count"]) == [2, 1]
    assert {ax.get_title() for ax in example_grid(rgb, n=3).axes if ax.images} == {"A", "none", "A, B"}


def test_audit_json_and_table(capsys):
    rc = _run(["data", "audit", "phantom-high", "--n-per-class", "40", "--size", "32", "--n-boot", "20",
               "--seed", "3", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["level"] == "high" and doc["margin"] == 0.60 and isinstance(doc["passes"], bool)
    rows = doc["rows"]
    assert {"feature_family", "model", "auroc", "ci_low", "ci_high", "margin", "passes"} <= set(rows[0])
    judged = {r["feature_family"] for r in rows if r["judged"]}
    assert {"blob-shape", "profile-sorted", "edge-energy"} <= judged and "profile-raw" not in judged
    assert all(r["ci_low"] <= r["auroc"] <= r["ci_high"] for r in rows)
    assert _run(["data", "audit", "low", "--n-per-class", "20", "--size", "32", "--n-boot", "10"]) == 0
    text = capsys.readouterr().out
    assert "AUROC <= 0.60" in text and "texture-gabor" in text and "verdict:" in text


def test_audit_errors_are_ttl_errors(capsys):
    with pytest.raises(TTLError, match="LEVEL must be one of"):
        _run(["data", "audit", "chexpert"])
    with pytest.raises(SystemExit):  # a contrast outside the generator's range: a usage error, before any work
        _run(["data", "audit", "mid", "--contrast", "0"])
    assert "argument --contrast: must be a finite number >= 0.1 and <= 10" in capsys.readouterr().err
