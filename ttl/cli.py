"""The ``ttl`` command line: one sub-command per module under ``ttl/commands``.

Exit codes: 0 success, 1 unexpected failure, 2 bad input (a ``TTLError``: message on stderr),
130 interrupted (a training run resumes from its last checkpoint when started again).
"""

from __future__ import annotations

import argparse
import importlib
import os
import json
import sys
from collections.abc import Sequence
from typing import Any

from ttl import __version__
from ttl.commands.argtypes import ArgumentParser
from ttl.errors import TTLError

COMMAND_MODULES = ("cuts", "train", "evaluate", "probe", "bench", "data", "pretrain", "search", "book")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="ttl", description="TTL Study: truncated transfer learning experiments.",
        epilog="Run `ttl COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"ttl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"ttl.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ttl.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def print_json(obj: Any) -> None:
    from ttl.provenance import _jsonable

    print(json.dumps(_jsonable(obj), indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ttl`` command; Ctrl-C at any point (even while importing torch) is exit 130 and one line."""
    command = "ttl"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"ttl {args.command}" if getattr(args, "command", None) else "ttl"
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return _run(args)
    except KeyboardInterrupt:
        print(f"{command}: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    """The command's handler, its user errors turned into exit 2 and one message."""
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader went away (`ttl cuts resnet50 --json | head`): not an error
        _silence_stdout()
        return 0
    except TTLError as exc:
        print(f"ttl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # no space left on device, permission denied, a folder that is a file, ...
        print(f"ttl {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured by a test)
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
