"""Command-line values are validated before any data work; help shows defaults; a closed pipe is quiet."""

import pytest

import ttl.data
from ttl.cli import build_parser, main
from ttl.commands.train import check_model_args, source_label
from ttl.errors import ConfigError


@pytest.fixture
def no_data(monkeypatch):
    """Any attempt to load data (or to start a benchmark, pre-training or probe) fails the test:
    validation must come first."""
    import ttl.bench
    import ttl.experiments
    import ttl.pretrain.train

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the arguments were validated")

    monkeypatch.setattr(ttl.data, "load", refuse)
    for module, name in ((ttl.bench, "bench_infer"), (ttl.bench, "bench_train"), (ttl.bench, "bench_sweep"),
                         (ttl.pretrain.train, "pretrain"), (ttl.experiments, "probe_sources")):
        monkeypatch.setattr(module, name, refuse)


BAD = [
    (["train", "--lr", "nan"], "argument --lr: must be a finite number"),
    (["train", "--lr", "-1"], "argument --lr: must be a finite number > 0"),
    (["train", "--patience", "-1"], "argument --patience: must be an integer >= 0"),
    (["train", "--weight-decay", "-1"], "argument --weight-decay: must be a finite number >= 0"),
    (["train", "--epochs", "0"], "argument --epochs: must be an integer >= 1"),
    (["train", "--size", "7"], "argument --size: must be an integer >= 16 and <= 2048"),
    (["train", "--data-size", "0"], "argument --data-size: must be an integer >= 16"),
    (["train", "--n-boot", "-5"], "argument --n-boot: must be an integer >= 0"),
    (["train", "--width", "1.5"], "argument --width: must be a finite number > 0 and <= 1"),
    (["train", "--contrast", "abc"], "argument --contrast: must be a number, got 'abc'"),
    (["search", "--seeds", "0", "-1"], "argument --seeds: must be an integer >= 0"),
    (["pretrain", "--lr", "-1"], "argument --lr: must be a finite number > 0"),
    (["bench", "train", "--steps", "0"], "argument --steps: must be an integer >= 1"),
    (["bench", "train", "--repeats", "0"], "argument --repeats: must be an integer >= 1"),
    (["bench", "train", "--batch", "0"], "argument --batch: must be an integer >= 1"),
    (["bench", "infer", "--latency-batch", "0"], "argument --latency-batch: must be an integer >= 1"),
    (["probe", "--size", "7"], "argument --size: must be an integer >= 16"),
    (["data", "show", "phantom-mid", "--label-noise", "0.5"], "argument --label-noise: must be a finite number >= 0 and < 0.5"),
    (["data", "audit", "low", "--n-boot", "0"], "argument --n-boot: must be an integer >= 1"),
    (["search", "--neighbourhood", "-3"], "argument --neighbourhood: must be stage or adjacent or an integer"),
    (["search", "--neighbourhood", "everything"], "argument --neighbourhood: must be stage or adjacent"),
    (["evaluate", "runs/x", "--split", "bogus"], "argument --split: invalid choice: 'bogus'"),
    # Ray refused these with a traceback (found by tools/attack): usage errors now
    (["search", "--executor", "ray", "--ray-gpus-per-task", "1.5"],
     "argument --ray-gpus-per-task: must be a fraction of one (at most 1) or a whole number, got '1.5'"),
    (["bench", "sweep", "--executor", "ray", "--ray-cpus-per-task", "2.5"], "argument --ray-cpus-per-task: must be a fraction"),
    (["search", "--executor", "ray", "--ray-gpus-per-task", "99999999999999999999"],
     "argument --ray-gpus-per-task: must be a finite number >= 0 and <= 1024"),
    (["search", "--executor", "ray", "--ray-threads-per-task", "99999999999999999999"],
     "argument --ray-threads-per-task: must be an integer >= 1 and <= 1024"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_values_are_usage_errors(argv, message, capsys, no_data):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["train", "--cut", "layer9"], "unknown cut 'layer9' for resnet18"),
    (["train", "--arch", "vgg16"], "unknown architecture 'vgg16'"),
    (["train", "--source", "imagenet-typo"], "unknown weight source 'imagenet-typo'"),
    (["search", "--source", "no/such/file.pt"], "unknown weight source 'no/such/file.pt'"),
    (["train", "--strategy", "full", "--cut", "layer2.1"], "--strategy full trains the whole network"),
    (["train", "--strategy", "ttl", "--cut", "layer2.1", "--width", "0.5"], "apply to --strategy transfusion only"),
    (["train", "--strategy", "lwft"], "--strategy lwft needs --cut"),
    (["train", "--source", "imagenet:NOPE"], "unknown ImageNet weights 'NOPE' for resnet18"),
    (["train", "--strategy", "transfusion", "--cut", "layer2.1", "--slim-from", "layer9"],
     "--slim-from: unknown cut 'layer9'"),
    (["bench", "sweep", "--dataset", "nosuchdata"], "nosuchdata"),
    (["train", "--strategy", "transfusion", "--cut", "layer2.1", "--slim-from", "layer1.0"],
     "--slim-from layer1.0 must come after the cut layer2.1"),
    (["train", "--device", "tpu"], "device='tpu' is not a device"),
    (["search", "--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["search", "--device", "x"],
     "device="),
    (["probe", "--sources", "fractal", "bogus"], "unknown weight source 'bogus'"),
    (["probe", "--arch", "vgg16"], "unknown architecture 'vgg16'"),
    (["bench", "infer", "--arch", "resnet18", "vgg16"], "unknown architecture 'vgg16'"),
    (["bench", "infer", "--arch", "resnet18", "--cuts", "layer9"], "unknown cut 'layer9'"),
    (["bench", "train", "--arch", "resnet18", "--cut", "layer9"], "unknown cut 'layer9'"),
    (["bench", "sweep", "--source", "bogus"], "unknown weight source 'bogus'"),
    (["bench", "infer", "--out", "."], "--out . is a folder"),  # (and the default --arch is one name, not letters)
    (["pretrain", "--arch", "vgg99"], "unknown torchvision architecture 'vgg99'"),
    (["pretrain", "--register", "--weights-dir", __file__], "is a file"),
])
def test_model_arguments_are_checked_before_data(argv, message, capsys, no_data):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_check_model_args_accepts_real_choices(tmp_path):
    checkpoint = tmp_path / "mine.pt"
    checkpoint.write_bytes(b"")
    for source in ("fractal", "scratch", "imagenet", "imagenet:IMAGENET1K_V1", str(checkpoint)):
        check_model_args("resnet18", "layer2.1", source)
    with pytest.raises(ConfigError):
        check_model_args("resnet18", "layer2.1", "imagenet_v1")


def test_default_run_folders_name_the_source():
    labels = {source_label(s) for s in ("fractal", "scratch", "imagenet", "imagenet:IMAGENET1K_V1", "w/mine.pt")}
    assert labels == {"fractal", "scratch", "imagenet", "imagenet-IMAGENET1K_V1", "mine"}
    train = build_parser().parse_args(["train"])
    search = build_parser().parse_args(["search"])
    assert train.source == search.source == "fractal"  # the shipped, offline-safe default everywhere


def _parser(argv):
    sub = build_parser()
    for word in argv:
        sub = next(a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction").choices[word]
    return sub


def _option_help(parser):
    """{option: its help entry, whitespace collapsed}."""
    formatter = parser._get_formatter()
    return {a.option_strings[-1]: " ".join(formatter._format_action(a).split())
            for a in parser._actions if a.option_strings}


def test_help_shows_each_default_once():
    entries = _option_help(_parser(["train"]))
    assert entries["--epochs"] == "--epochs EPOCHS (default: 10)"
    assert entries["--seed"] == "--seed SEED (default: 0)"  # a zero default is still shown
    assert entries["--patience"].endswith("(0: off) (default: 5)")
    assert entries["--slim-from"].endswith("(default: first after cut)")
    assert entries["--json"] == "--json print the result as JSON"  # flags: no "default: False"
    assert "default" not in entries["--root"]  # None: nothing to show
    for argv in (["search"], ["probe"], ["bench", "train"], ["data", "audit"], ["pretrain"], ["evaluate"]):
        twice = [e for e in _option_help(_parser(argv)).values() if e.count("default") > 1]
        assert not twice, (argv, twice)


def test_closed_pipe_is_not_an_error(monkeypatch, capsys):
    import ttl.commands.cuts as cuts

    def writes_into_a_closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cuts, "run", writes_into_a_closed_pipe)
    assert main(["cuts", "resnet18"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_book_without_its_tool_chain_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "papermill" else real(name, *a))
    assert main(["book", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "missing here: papermill" in err and 'pip install "ttl-study[book]"' in err


# A child `ttl` that interrupts itself (SIGINT, as Ctrl-C sends) when it first imports MODULE: the
# signal lands at a chosen point of the start-up, not at a moment a timer guesses.
_INTERRUPT_AT = """
import importlib.abc, os, runpy, signal, sys
AT = sys.argv[1]
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == AT:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["ttl", *sys.argv[2:]]
runpy.run_module("ttl.cli", run_name="__main__")
"""


@pytest.mark.parametrize("module, argv", [
    ("ttl.commands.train", ["train"]),  # while the parser imports the commands
    ("torch", ["cuts", "resnet18"]),  # while a command imports torch
    ("ttl.data.phantoms", ["train", "--source", "scratch", "--n-per-class", "4", "--data-size", "32"]),  # data
])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, module, argv):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "TTL_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_AT, module, *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 130, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "interrupted" in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("result.json"))


def test_train_leaves_its_arguments_as_parsed(monkeypatch, tmp_path):
    import ttl.train
    from ttl.commands.train import run

    seen = {}

    def stop(model, train, val, cfg, **kwargs):
        seen.update(kwargs["params"]["model"])
        raise KeyboardInterrupt

    monkeypatch.setattr(ttl.train, "fit", stop)
    monkeypatch.setenv("TTL_CACHE", str(tmp_path))
    args = build_parser().parse_args(["train", "--source", "scratch", "--n-per-class", "4", "--data-size", "32"])
    with pytest.raises(KeyboardInterrupt):
        run(args)
    assert args.width is None and seen["width"] == 0.5  # the default is recorded, the namespace untouched


def test_training_options_default_to_train_configs_own_values():
    """``ttl train`` and ``ttl search`` take TrainConfig's defaults (they used to re-declare them)."""
    from dataclasses import fields

    from ttl.cli import build_parser
    from ttl.train import TrainConfig

    own = {f.name: f.default for f in fields(TrainConfig)}
    flags = {"epochs": "epochs", "batch": "batch_size", "lr": "lr", "weight_decay": "weight_decay",
             "schedule": "schedule", "patience": "patience", "amp": "amp", "seed": "seed", "n_boot": "n_boot"}
    for command in ("train", "search"):
        args = vars(build_parser().parse_args([command]))
        checked = [dest for dest in flags if dest in args]
        assert {"epochs", "batch", "lr", "patience", "n_boot"} <= set(checked)
        for dest in checked:
            assert args[dest] == own[flags[dest]], f"ttl {command} --{dest}: {args[dest]!r} != TrainConfig's"
