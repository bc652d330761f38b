"""Provenance of every number: parameters, git commit, package versions, hardware, wall time.

Every result file is written atomically (temporary file in the same folder, then ``os.replace``)
so an interrupted run never leaves half a JSON behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

PACKAGES = (
    "torch", "torchvision", "numpy", "scikit-learn", "scipy", "grad-cam", "papermill",
    "jupyter-book", "matplotlib", "pandas", "ttl-study",
)


def _jsonable(obj: Any) -> Any:
    """Convert dataclasses, paths, numpy and torch scalars to plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays/scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:  # NaN is not valid JSON
        return None
    return obj


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    Parent folders are created; on any error the temporary file is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def remove_orphan_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left in ``folder`` when its process was killed.

    Call it only while no other process writes ``folder`` (e.g. under the run folder's lock).
    """
    folder = Path(folder)
    removed = []
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent folders."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` to ``path`` atomically."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; a :class:`~ttl.errors.DataError` naming the file when it is corrupt."""
    from ttl.errors import DataError

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not readable JSON (corrupt or truncated: {e}); restore it or delete it "
                        "(a run folder's files are then rebuilt by training again)") from e


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_commit(repo: str | os.PathLike | None = None) -> dict[str, Any]:
    """The current commit and whether the tree has uncommitted changes (None outside git).

    An installed package (no source checkout) has no commit: its version is in the package
    versions; the git repository a user's environment happens to live in is not asked."""
    from ttl.resources import CHECKOUT_DIR, in_checkout

    if repo is None and not in_checkout():
        return {"commit": os.environ.get("TTL_GIT_COMMIT"), "dirty": None,
                "source": "TTL_GIT_COMMIT" if os.environ.get("TTL_GIT_COMMIT") else "installed package"}
    cwd = Path(repo) if repo else CHECKOUT_DIR
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        # a copy of the tree without .git (e.g. a remote GPU machine): the caller may pass it on
        return {"commit": os.environ.get("TTL_GIT_COMMIT"), "dirty": None,
                "source": "TTL_GIT_COMMIT" if os.environ.get("TTL_GIT_COMMIT") else None}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# the instruction-set extensions that decide which CPU kernels oneDNN and PyTorch pick
_VECTOR_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                 "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def cpu_info() -> dict[str, Any]:
    """The CPU's model name and vector extensions (from ``/proc/cpuinfo`` on Linux)."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"cpu_model": model or platform.processor() or None,
            "cpu_vector_flags": [f for f in _VECTOR_FLAGS if f in flags]}


def hardware(device: Any = None) -> dict[str, Any]:
    """CPU model and vector instruction set, core count and, when CUDA is used, the GPU's name and
    memory. CPU numbers are bit-reproducible on the same kind of CPU; another instruction set
    (AVX2 vs AVX512, ...) selects other kernels and moves results in the last digits."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        **cpu_info(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device) if device is not None else "cpu",
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        idx = torch.device(device).index if device is not None and "cuda" in str(device) else 0
        idx = idx or 0
        props = torch.cuda.get_device_properties(idx)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


def provenance(params: Mapping[str, Any] | None = None, device: Any = None,
               wall_time_s: float | None = None, **extra: Any) -> dict[str, Any]:
    """The provenance block saved beside every result."""
    return {
        "params": _jsonable(dict(params or {})),
        "git": git_commit(),
        "packages": package_versions(),
        "hardware": hardware(device),
        "wall_time_s": wall_time_s,
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **_jsonable(extra),
    }


def write_result(path: str | os.PathLike, payload: Mapping[str, Any], params: Mapping[str, Any],
                 device: Any = None, wall_time_s: float | None = None) -> Path:
    """Write ``payload`` plus its provenance as one JSON file, atomically."""
    doc = dict(_jsonable(dict(payload)))
    doc["provenance"] = provenance(params, device=device, wall_time_s=wall_time_s)
    return atomic_write_json(path, doc)


@contextlib.contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """``with stopwatch() as t: ...`` then ``t["seconds"]`` holds the wall time."""
    t = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield t
    finally:
        t["seconds"] = time.perf_counter() - start


def stable_hash(obj: Any, length: int = 20) -> str:
    """Hex sha256 of a JSON-able object, independent of key order."""
    text = json.dumps(_jsonable(obj), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def params_hash(params: Mapping[str, Any]) -> str:
    """A short stable hash of a parameter mapping (to tell whether a run can be reused)."""
    return stable_hash(dict(params), 16)
