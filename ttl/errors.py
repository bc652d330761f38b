"""Exceptions meant for users: the CLI prints their message and exits with code 2."""

from __future__ import annotations


class TTLError(Exception):
    """Base class of every error whose message tells a user what went wrong and what to do."""


class ConfigError(TTLError, ValueError):
    """A bad argument or parameter value (unknown architecture, cut, strategy, ...)."""


class WeightsUnavailableError(TTLError, RuntimeError):
    """Pretrained weights cannot be obtained (offline, missing file, ...)."""


class ChecksumError(TTLError, RuntimeError):
    """A file's sha256 does not match the one its manifest gives."""


class DataError(TTLError, ValueError):
    """A dataset, manifest, label file or image is missing, malformed or inconsistent."""


class TrainingDivergedError(TTLError, RuntimeError):
    """A training's loss or weights became non-finite: the run is failed, never stored as finished."""


class RunLockedError(TTLError, RuntimeError):
    """Another live process is writing the same run folder."""
