"""requirements.txt, pyproject.toml and environment.yml must agree on the pinned versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _reqs(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower()
            out[name] = line.replace(" ", "")
    return out


def test_pins_agree():
    """Every pin of requirements.txt satisfies pyproject's range for it, and every dependency of the
    package and of its extras is pinned there."""
    from packaging.requirements import Requirement

    req = _reqs((ROOT / "requirements.txt").read_text().splitlines())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert req["torch"] == "torch==2.14.1" and req["torchvision"] == "torchvision==0.29.1"
    declared = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    for text in declared:
        wanted = Requirement(text)
        assert wanted.name.lower() in req, f"{wanted.name} is not in requirements.txt"
        pinned = Requirement(req[wanted.name.lower()])
        for spec in pinned.specifier:
            if spec.operator == "==":
                assert wanted.specifier.contains(spec.version), f"{pinned} outside pyproject's {wanted}"
    assert set(project["optional-dependencies"]) >= {"book", "test"}
    assert not any(Requirement(d).name in {"torch", "torchvision"} and "==" in d for d in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-r requirements.txt" in pip
    assert project["requires-python"] == ">=3.10,<3.14"
    assert project["scripts"]["ttl"] == "ttl.cli:main"


def test_ttl_exposes_its_subpackages_lazily():
    import subprocess
    import sys

    code = ("import sys, ttl; assert 'ttl.models' not in sys.modules; "
            "print(ttl.models.cut_points('resnet18')[-1], ttl.stats.__name__); "
            "import pytest\n"
            "try:\n    ttl.nope\nexcept AttributeError as e:\n    print('AttributeError', e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "layer4.1 ttl.stats" and "AttributeError" in out.stdout
