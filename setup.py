"""Build step for the wheel: copy the study's shipped files into ``ttl/_shipped`` as package data.

The manifests, profiles, notebooks, fractal source weights and the book's pages live at the
repository's top level, where the book and the tests use them. A non-editable install has no
repository, so the wheel carries copies of them under ``ttl/_shipped/`` (``ttl.resources`` finds
them there). An editable install reads them from the repository and copies nothing.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "ttl"))
from resources import NOT_SHIPPED, SHIPPED  # noqa: E402  (ttl/resources.py imports nothing of ttl)

sys.path.pop(0)


class BuildWithShippedFiles(build_py):
    """``build_py`` that also copies the shipped files into ``<build_lib>/ttl/_shipped``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ttl" / "_shipped"
        for relative in SHIPPED:
            source = HERE / relative
            if not source.exists():
                raise SystemExit(f"setup.py: shipped file {source} is missing; build from a full checkout")
            if source.is_dir():
                shutil.copytree(source, target / relative, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(*NOT_SHIPPED, "*.pyc"))
            else:
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / relative)


setup(cmdclass={"build_py": BuildWithShippedFiles})
