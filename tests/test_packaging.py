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
    req = _reqs((ROOT / "requirements.txt").read_text().splitlines())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = _reqs(pyproject["project"]["dependencies"])
    assert req["torch"] == "torch==2.14.1" and req["torchvision"] == "torchvision==0.29.1"
    for name, spec in deps.items():
        assert req.get(name) == spec, f"{name}: pyproject {spec} vs requirements {req.get(name)}"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-r requirements.txt" in pip
    assert pyproject["project"]["requires-python"].startswith(">=3.11")
    assert pyproject["project"]["scripts"]["ttl"] == "ttl.cli:main"
