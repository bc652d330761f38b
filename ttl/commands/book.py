"""``ttl book --profile smoke|quick|cpu|gpu|paper|PATH.yaml``: execute the notebooks, then build the book."""

from __future__ import annotations

import argparse
from pathlib import Path

from ttl.book import COMMITTED_PROFILE, PROFILES_DIR


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "book", help="execute the notebooks under a profile and build the HTML book",
        description="Execute notebooks/NAME.ipynb with papermill under a profile (profiles/*.yaml), "
                    "reusing executed notebooks whose parameters and code did not change, then build "
                    "the HTML book with Jupyter Book (strict: any warning fails the build).",
        epilog="Examples: ttl book --profile smoke;  ttl book --profile quick --only 01_data --no-build;  "
               "ttl book --profile my_profile.yaml --force")
    p.add_argument("--profile", default=COMMITTED_PROFILE,
                   help="a shipped profile (" + ", ".join(sorted(f.stem for f in PROFILES_DIR.glob("*.yaml")))
                   + f") or a path to a profile YAML (default: {COMMITTED_PROFILE}, the committed book; any other "
                   "profile writes under _build/<profile>/ unless told otherwise)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="execute only these notebooks of the profile (the book still shows the others "
                        "already executed)")
    p.add_argument("--force", action="store_true", help="execute even notebooks that are up to date")
    p.add_argument("--executed-dir", type=Path, default=None,
                   help="where executed notebooks go (default: book/executed for the committed profile, "
                        "_build/PROFILE/executed for any other)")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="results root; each notebook gets output_dir=DIR/NAME (default: results/PROFILE for the "
                        "committed profile, _build/PROFILE/results for any other)")
    p.add_argument("--notebooks-dir", type=Path, default=None,
                   help="where the source notebooks NAME.ipynb are (default: notebooks/)")
    p.add_argument("--no-build", action="store_true", help="execute the notebooks only; no HTML")
    p.add_argument("--html-only", action="store_true",
                   help="build the HTML from the executed notebooks as they are, executing nothing (those "
                        "executed by an earlier version of the code are named)")
    p.add_argument("--build-dir", type=Path, default=None,
                   help="the HTML goes to DIR/_build/html (default: the repository root for the committed "
                        "profile, i.e. _build/html; _build/PROFILE for any other)")
    p.add_argument("--runs-dir", type=Path, default=None,
                   help="where trained models live, replacing the profile's runs_dir (finished runs there are reused)")
    p.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
    p.set_defaults(func=run)


BOOK_MODULES = {"papermill": "papermill", "nbformat": "nbformat", "ipykernel": "ipykernel",
                "myst_nb": "jupyter-book", "jupyter_book": "jupyter-book"}


def check_book_tools() -> None:
    """A ConfigError naming the missing packages when the book tool-chain (the `book` extra) is absent."""
    import importlib.util

    from ttl.errors import ConfigError

    missing = sorted({pkg for mod, pkg in BOOK_MODULES.items() if importlib.util.find_spec(mod) is None})
    if missing:
        raise ConfigError(f"`ttl book` needs the book tool-chain, missing here: {', '.join(missing)}; install it "
                          "with: pip install \"ttl-study[book]\" (or `make env` in the repository)")


def run(args: argparse.Namespace) -> int:
    from ttl.book import load_profile, run_book

    check_book_tools()
    profile = load_profile(args.profile)
    if args.html_only:
        from ttl.book import build_only
        from ttl.errors import ConfigError

        if args.no_build or args.force or args.only or args.runs_dir or args.notebooks_dir:
            raise ConfigError("--html-only executes nothing: drop --no-build, --force, --only, --runs-dir "
                              "and --notebooks-dir")
        html = build_only(profile, executed_dir=args.executed_dir, results_dir=args.results_dir,
                          build_dir=args.build_dir)
        print(f"book:   {html / 'index.html'}")
        return 0
    result = run_book(profile, only=args.only, force=args.force, executed_dir=args.executed_dir,
                      results_dir=args.results_dir, build=not args.no_build, build_dir=args.build_dir,
                      notebooks_dir=args.notebooks_dir, progress=not args.no_progress, runs_dir=args.runs_dir)
    for r in result.notebooks:
        print(f"{r.name:<28} {r.status:<13} {r.seconds:8.1f} s  {r.executed_path}")
    print(f"record: {result.record}")
    if result.html_dir is not None:
        print(f"book:   {result.html_dir / 'index.html'}")
    return 0
