"""Where the study's shipped files live, and where a run writes by default.

The dataset manifests, book profiles, notebooks, fractal source weights and the book's pages are
*shipped files*. In a source checkout (``pip install -e .`` or ``PYTHONPATH=.``) they are read
from the repository; an installed wheel carries copies of them as package data under
``ttl/_shipped/`` (``setup.py`` copies them there at build time), read-only.

Outputs never go into an installed package: in a checkout the default output root is the
repository (``runs/``, ``_build/``, the committed ``book/executed``), otherwise it is
``$TTL_HOME`` or the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
SHIPPED_DIR = PACKAGE_DIR / "_shipped"
# what a wheel ships (relative to the repository root); setup.py's build step copies these
SHIPPED = ("data_manifests", "profiles", "notebooks", "weights", "book", "_config.yml", "_toc.yml",
           "results/sources")
# never shipped: the committed book's executed chapters and editor leftovers
NOT_SHIPPED = ("executed", "__pycache__", ".ipynb_checkpoints", "screenshot.png")


def in_checkout() -> bool:
    """True when the package is imported from a source checkout (its repository is beside it)."""
    return (CHECKOUT_DIR / "pyproject.toml").is_file() and (CHECKOUT_DIR / "data_manifests").is_dir()


def shipped_root() -> Path:
    """The folder holding the shipped files: the repository, or ``ttl/_shipped`` of a wheel."""
    return CHECKOUT_DIR if in_checkout() else SHIPPED_DIR


def shipped(relative: str) -> Path:
    """A shipped file or folder, e.g. ``shipped("data_manifests")``."""
    return shipped_root() / relative


def work_root() -> Path:
    """Where outputs go by default: the repository in a checkout, else ``$TTL_HOME`` or the
    current directory (never inside an installed package)."""
    if in_checkout():
        return CHECKOUT_DIR
    return Path(os.environ.get("TTL_HOME") or Path.cwd()).resolve()


def user_dirs(variable: str) -> list[Path]:
    """The folders an environment variable lists (``os.pathsep``-separated; empty entries skipped)."""
    return [Path(p).expanduser() for p in os.environ.get(variable, "").split(os.pathsep) if p.strip()]
