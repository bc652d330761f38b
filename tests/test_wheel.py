"""The package outside its repository: a non-editable wheel, installed into a folder of its own.

The wheel is built from a copy of the sources (the repository is not written), installed with
``pip install --target``, and imported through ``PYTHONPATH`` from a working folder elsewhere, so
it shadows the editable install of the test environment. It must find its shipped manifests,
profiles, notebooks and fractal weights as package data, write only into the working folder, and
add a user's manifest folder to the shipped ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ttl.resources import NOT_SHIPPED, SHIPPED

ROOT = Path(__file__).resolve().parent.parent
BUILD_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "ttl")

pytestmark = pytest.mark.slow


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """Build the wheel from a copy of the sources; install it into ``site``; return the folders."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for name in BUILD_FILES + SHIPPED:
        source, target = ROOT / name, src / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", *NOT_SHIPPED))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(src)],
                   check=True, capture_output=True, text=True)
    wheel = next((base / "dist").glob("ttl_study-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(base / "site"), str(wheel)],
                   check=True, capture_output=True, text=True)
    work = base / "work"
    work.mkdir()
    return {"site": base / "site", "work": work, "cache": base / "cache", "wheel": wheel}


def _run(installed: dict[str, Path], args: list[str], **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("TTL_MANIFEST_DIR", "TTL_WEIGHTS_DIR", "TTL_HOME")}
    environ.update(PYTHONPATH=str(installed["site"]), TTL_CACHE=str(installed["cache"]), **env)
    return subprocess.run([sys.executable, *args], cwd=installed["work"], env=environ, capture_output=True,
                          text=True, timeout=600)


def test_the_wheel_carries_the_shipped_files(installed):
    shipped = installed["site"] / "ttl" / "_shipped"
    have = _files(shipped)
    for name in ("data_manifests/phantom-mid.yaml", "data_manifests/fashion-mnist-shirts.yaml",
                 "profiles/smoke.yaml", "notebooks/02_feature_transferability.ipynb", "weights/manifest.json",
                 "weights/resnet18_fractal.pt", "_config.yml", "_toc.yml", "book/intro.md",
                 "book/_static/mathjax/tex-chtml.js"):
        assert name in have, f"{name} missing from the wheel"
    assert not any(n.startswith("book/executed") for n in have), "the committed chapters are not package data"
    assert _files(ROOT / "data_manifests") == {n.split("/", 1)[1] for n in have if n.startswith("data_manifests/")}


def test_installed_package_reads_its_package_data_and_builds_the_fractal_source(installed):
    code = ("import ttl, ttl.resources as r, torch\n"
            "from ttl.data import list_datasets\n"
            "from ttl.models import build\n"
            "print(ttl.__file__)\n"
            "print(r.in_checkout(), r.work_root())\n"
            "print('phantom-mid' in list_datasets(), 'fashion-mnist-shirts' in list_datasets())\n"
            "torch.manual_seed(0); m = build('resnet18', source='fractal')\n"
            "print(repr(sum(float(t.double().sum()) for t in m.state_dict().values())))\n")
    out = _run(installed, ["-c", code])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == str(installed["site"] / "ttl" / "__init__.py")
    assert lines[1] == f"False {installed['work'].resolve()}"
    assert lines[2] == "True True"
    import torch

    from ttl.models import build

    torch.manual_seed(0)  # the same random head on both sides
    here = build("resnet18", source="fractal").state_dict().values()  # the checkout's weights
    assert float(lines[3]) == sum(float(t.double().sum()) for t in here) != 0.0


def test_installed_package_trains_on_a_phantom_writing_only_into_the_work_folder(installed):
    before = _files(installed["site"])
    out = _run(installed, ["-m", "ttl.cli", "train", "--dataset", "phantom-low", "--n-per-class", "8",
                           "--data-size", "32", "--epochs", "1", "--cut", "layer1.1", "--n-boot", "10",
                           "--out", "runs/wheel", "--json"])
    assert out.returncode == 0, out.stderr
    result = installed["work"] / "runs" / "wheel" / "result.json"
    assert result.is_file()
    import json

    doc = json.loads(result.read_text())
    params = doc["provenance"]["params"]
    assert params["model"]["source"] == "fractal"
    shipped = installed["site"] / "ttl" / "_shipped" / "data_manifests" / "phantom-low.yaml"
    assert Path(params["data_files"]["train"]["manifest"]) == shipped
    git = doc["provenance"]["git"]
    assert git["commit"] is None and git["source"] == "installed package"  # not the checkout's commit
    assert _files(installed["site"]) == before, "the run wrote into the installed package"


def test_installed_package_adds_a_user_manifest_folder(installed, tmp_path):
    (tmp_path / "mine.yaml").write_text((ROOT / "data_manifests" / "phantom-low.yaml").read_text()
                                        .replace("name: phantom-low", "name: mine"))
    code = "from ttl.data import list_datasets, load_manifest\nprint(load_manifest('mine').path, len(list_datasets()))"
    out = _run(installed, ["-c", code], TTL_MANIFEST_DIR=str(tmp_path))
    assert out.returncode == 0, out.stderr
    path, n = out.stdout.split()
    assert Path(path) == tmp_path / "mine.yaml"
    assert int(n) == len(list((ROOT / "data_manifests").glob("*.yaml"))) + 1


def test_installed_package_never_registers_weights_inside_itself(installed):
    out = _run(installed, ["-m", "ttl.cli", "pretrain", "--arch", "resnet18", "--classes", "2",
                           "--images-per-class", "2", "--epochs", "1", "--register"])
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--weights-dir" in out.stderr and "TTL_WEIGHTS_DIR" in out.stderr and "Traceback" not in out.stderr
    assert not (installed["work"] / "runs").exists() or not any((installed["work"] / "runs").rglob("pretrain*"))


def test_installed_book_writes_outside_the_package(installed):
    """``ttl book`` of an installed package: even the committed profile's chapters go under
    ``_build/<profile>`` of the working folder (here only its paths are resolved, nothing runs)."""
    code = ("from ttl import book\n"
            "p = book.load_profile('cpu')\n"
            "print(book.is_committed(p), book.default_executed_dir(p), book.book_sources(book.WORK_ROOT))")
    out = _run(installed, ["-c", code])
    assert out.returncode == 0, out.stderr
    committed, executed, sources = out.stdout.split()
    work = installed["work"].resolve()
    assert committed == "False" and Path(executed) == work / "_build" / "cpu" / "executed"
    assert Path(sources) == installed["site"] / "ttl" / "_shipped"
