"""The book: execute the notebooks with papermill under a profile, then build the HTML book.

A *profile* (``profiles/NAME.yaml``) says which notebooks to run, in which order, and with which
parameters::

    description: what the profile is for
    hardware: 2 CPU cores               # documentation only
    time_budget_minutes: 10             # documentation only
    defaults:                           # given to every notebook that declares the parameter
      device: cpu
      image_size: 64
    notebooks:
      - name: 01_data                   # notebooks/01_data.ipynb
        parameters: {n_per_class: 32}   # overrides; the notebook must declare each one

Each notebook also receives ``output_dir`` (``<results dir>/<name>``) and ``profile``.
An executed notebook stores a hash of its parameters, its source notebook and every ``ttl/**.py``
file in its metadata (``metadata.ttl_book``): a later run with the same hash reuses it instead of
executing it again. A failing notebook stops the run with a :class:`NotebookFailed` error naming the
cell; its partial output is kept beside the executed notebook as ``NAME.failed.ipynb`` and the
previous good one stays in place. The HTML book is built by Jupyter Book 1.x (``execute_notebooks:
off``, strict: ``-W -n --keep-going``) from a staged copy of the book sources whose table of
contents lists the profile's executed notebooks.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pydantic import Field

from ttl.errors import ConfigError, TTLError
from ttl.processes import pid_alive
from ttl.resources import in_checkout, shipped_root, work_root
from ttl.schema import Strict, either
from ttl.schema import validate as schema_validate

# SOURCE_ROOT holds the book's sources (_config.yml, _toc.yml, book/, notebooks/, profiles/): the
# repository, or an installed wheel's copy (ttl.resources). WORK_ROOT is where the book's outputs go
# by default and what recorded paths are relative to: the repository, or the current directory.
SOURCE_ROOT = shipped_root()
WORK_ROOT = work_root()
PACKAGE_DIR = Path(__file__).resolve().parent
PROFILES_DIR = SOURCE_ROOT / "profiles"
NOTEBOOKS_DIR = SOURCE_ROOT / "notebooks"
EXECUTED_SUBDIR = Path("book") / "executed"  # where the toc expects executed notebooks
COMMITTED_PROFILE = "cpu"  # the profile of the committed book (book/executed, results/cpu)
METADATA_KEY = "ttl_book"
RUNNER_PARAMETERS = ("output_dir", "profile")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SCALARS = (str, int, float, bool, type(None))


class BookError(TTLError):
    """The book could not be built (missing notebook, Jupyter Book warnings, ...)."""


class NotebookFailed(BookError):
    """A notebook raised an error: which notebook, which cell, what error, where its output is."""

    def __init__(self, name: str, cell_index: int | None, first_line: str, error: str,
                 failed_path: Path | None) -> None:
        self.name, self.cell_index, self.first_line = name, cell_index, first_line
        self.error, self.failed_path = error, failed_path
        where = f"cell {cell_index} (counting from 0) `{first_line}`" if cell_index is not None else "a cell"
        kept = f"; partial output kept at {failed_path}" if failed_path else ""
        super().__init__(f"notebook {name} failed in {where}: {error}{kept}")


# --------------------------------------------------------------------------------------------
# profiles


@dataclasses.dataclass(frozen=True)
class NotebookSpec:
    """One entry of a profile's ``notebooks`` list."""

    name: str
    parameters: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Profile:
    """A validated profile: defaults plus an ordered list of notebooks with their overrides."""

    name: str
    path: Path | None
    defaults: dict[str, Any]
    notebooks: tuple[NotebookSpec, ...]
    description: str = ""
    hardware: str = ""
    time_budget_minutes: float | None = None

    def names(self) -> list[str]:
        return [nb.name for nb in self.notebooks]

    def spec(self, name: str) -> NotebookSpec:
        for nb in self.notebooks:
            if nb.name == name:
                return nb
        raise ConfigError(f"profile {self.name!r} has no notebook {name!r}; it has {self.names()}")


def _check_value(value: Any, where: str) -> None:
    """Parameter values must be what papermill can write as Python literals (YAML scalars,
    lists and string-keyed mappings of them)."""
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: mapping keys must be strings, got {k!r}")
            _check_value(v, f"{where}.{k}")
        return
    raise ConfigError(f"{where}: unsupported value {value!r} ({type(value).__name__}); use numbers, "
                      "strings, booleans, null, lists or mappings")


def _check_parameters(params: Any, where: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where} must be a mapping of parameter: value, got {type(params).__name__}")
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise ConfigError(f"{where}: parameter name {key!r} is not a valid Python identifier")
        if key in RUNNER_PARAMETERS:
            raise ConfigError(f"{where}.{key}: {key!r} is set by the runner "
                              "(use --results-dir for output_dir; the profile's name is passed as profile)")
        _check_value(value, f"{where}.{key}")
    return dict(params)


class NotebookEntry(Strict):
    """One entry of a profile's ``notebooks`` list (a bare name is short for ``{name: ...}``)."""

    name: str = Field(description="a notebook of notebooks/, without '.ipynb'")
    parameters: dict[str, Any] | None = Field(None, description="overrides; the notebook must declare each one")


class ProfileSchema(Strict):
    """The schema of a profile (``profiles/*.yaml``); parameter values are checked by
    :func:`_check_parameters` (what papermill can write as Python literals)."""

    description: str | None = Field(None, description="what the profile is for")
    hardware: str | None = Field(None, description="documentation only")
    time_budget_minutes: float | None = Field(None, ge=0, description="documentation only")
    defaults: dict[str, Any] | None = Field(None, description="given to every notebook that declares the parameter")
    notebooks: list[either(str, NotebookEntry)] = Field(  # type: ignore[valid-type]
        description="the notebooks to run, in order", min_length=1)


def parse_profile(data: Any, name: str, path: Path | None = None) -> Profile:
    """Validate a profile's YAML content; errors name the file (or profile) and the key."""
    src = str(path) if path is not None else f"profile {name!r}"
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: a profile must be a mapping with 'defaults' and 'notebooks', "
                          f"got {type(data).__name__}")
    if not data.get("notebooks") and "notebooks" in data:
        raise ConfigError(f"{src}: 'notebooks' is empty; list at least one notebook")
    if "notebooks" not in data:
        raise ConfigError(f"{src}: missing key 'notebooks' (an ordered list of notebooks to run)")
    try:
        schema = schema_validate(ProfileSchema, {k: v for k, v in data.items() if v is not None}, src, ConfigError)
    except ConfigError as exc:
        if re.search(r"unknown key 'notebooks\[\d+\]\.", str(exc)):
            raise ConfigError(f"{exc} (put notebook parameters under 'parameters:')") from None
        raise
    defaults = _check_parameters(data.get("defaults"), f"{src}: defaults")
    notebooks: list[NotebookSpec] = []
    for i, entry in enumerate(schema.notebooks):
        where = f"{src}: notebooks[{i}]"
        if isinstance(entry, str):
            entry = NotebookEntry(name=entry)
        nb_name = entry.name
        if not _NAME_RE.match(nb_name) or nb_name.endswith(".ipynb"):
            raise ConfigError(f"{where}.name must be a notebook name without '.ipynb' "
                              f"(letters, digits, '_', '-', '.'), got {nb_name!r}")
        if nb_name in {nb.name for nb in notebooks}:
            raise ConfigError(f"{where}.name: notebook {nb_name!r} is listed twice")
        notebooks.append(NotebookSpec(nb_name, _check_parameters(entry.parameters,
                                                                 f"{where} ({nb_name}).parameters")))
    return Profile(name=name, path=path, defaults=defaults, notebooks=tuple(notebooks),
                   description=schema.description or "", hardware=schema.hardware or "",
                   time_budget_minutes=schema.time_budget_minutes)


def available_profiles(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))


def load_profile(name_or_path: str | os.PathLike, profiles_dir: Path = PROFILES_DIR) -> Profile:
    """A profile by name (``profiles/NAME.yaml``) or by path to a YAML file."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if not (text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text):
        path = Path(profiles_dir) / f"{text}.yaml"
        if not path.exists():
            raise ConfigError(f"unknown profile {text!r}: no {path}; shipped profiles: "
                              f"{', '.join(available_profiles(profiles_dir)) or 'none'} (or give a .yaml path)")
    if not path.is_file():
        raise ConfigError(f"profile file {path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_profile(data, path.stem, path)


# --------------------------------------------------------------------------------------------
# hashing and parameters


def stale_running_copies(executed: Path) -> list[Path]:
    """``.<name>.<pid>.running.ipynb`` files beside ``executed`` whose build process no longer runs."""
    stale = []
    for path in executed.parent.glob(f".{executed.stem}.*.running.ipynb"):
        pid_text = path.name[len(executed.stem) + 2:-len(".running.ipynb")]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):  # other names are not ours
            stale.append(path)
    return stale


def code_hash(code_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over every ``*.py`` file under ``code_dir`` (relative path and bytes, sorted)."""
    h = hashlib.sha256()
    for path in sorted(Path(code_dir).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(code_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def run_hash(parameters: Mapping[str, Any], notebook_bytes: bytes, code: str) -> str:
    """The key deciding whether an executed notebook can be reused."""
    doc = {"parameters": parameters, "notebook": hashlib.sha256(notebook_bytes).hexdigest(), "code": code}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _display_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (stable across clones), else absolute."""
    path = Path(os.path.abspath(path))
    try:
        return path.relative_to(Path(os.path.abspath(root))).as_posix()
    except ValueError:
        return str(path)


def declared_parameters(notebook: Path) -> dict[str, Any] | None:
    """The parameters a notebook declares in its ``parameters`` cell (None when it has none)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return None
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def check_defaults_declared(profile: Profile, notebooks_dir: Path = NOTEBOOKS_DIR) -> None:
    """A ConfigError for a ``defaults`` key that none of the profile's notebooks declares (a typo such
    as ``contrats`` would otherwise be dropped silently), naming the closest declared parameter."""
    import difflib

    declared: set[str] = set()
    for spec in profile.notebooks:
        source = Path(notebooks_dir) / f"{spec.name}.ipynb"
        if source.is_file():
            declared |= set(declared_parameters(source) or {})
    unknown = sorted(set(profile.defaults) - declared - {"output_dir", "profile"})
    if unknown:
        src = profile.path or f"profile {profile.name!r}"
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(declared), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{src}: defaults {', '.join(hints)} are declared by none of its notebooks "
                          f"({', '.join(s.name for s in profile.notebooks)}); remove or rename them")


def notebook_parameters(profile: Profile, spec: NotebookSpec, declared: Mapping[str, Any] | None,
                        output_dir: str) -> dict[str, Any]:
    """Defaults the notebook declares, then its overrides (which it must declare), then the
    runner's ``output_dir`` and ``profile``."""
    if declared is not None:
        missing = sorted(k for k in spec.parameters if k not in declared)
        if missing:
            src = profile.path or f"profile {profile.name!r}"
            raise ConfigError(f"{src}: notebook {spec.name} has no parameter(s) {missing} in its "
                              f"'parameters' cell; it declares {sorted(declared)}")
        params = {k: v for k, v in profile.defaults.items() if k in declared}
    else:
        params = {}
    params.update(spec.parameters)
    params["output_dir"] = output_dir
    params["profile"] = profile.name
    return params


# --------------------------------------------------------------------------------------------
# executing one notebook


@dataclasses.dataclass
class NotebookRun:
    """What happened to one notebook of the profile."""

    name: str
    status: str  # "executed" | "reused" | "not selected" | "failed"
    seconds: float
    executed_path: str
    hash: str | None
    parameters: dict[str, Any]
    executed_seconds: float | None = None  # how long its execution took (also for a reused one)


def _stored(executed: Path) -> dict[str, Any]:
    """This runner's metadata in an executed notebook ({} when absent or unreadable)."""
    try:
        entry = json.loads(executed.read_text()).get("metadata", {}).get(METADATA_KEY)
    except (OSError, ValueError):
        return {}
    return entry if isinstance(entry, dict) else {}


def stored_hash(executed: Path) -> str | None:
    """The run hash kept in an executed notebook's metadata (None when absent or unreadable)."""
    return _stored(executed).get("hash")


def _error_cell(exc: Any, nb_path: Path) -> tuple[int | None, str]:
    """The failing cell's index in the *source* notebook (the injected-parameters cell removed)
    and its first non-empty source line."""
    source = str(getattr(exc, "source", "") or "")
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    index = getattr(exc, "cell_index", None)
    if index is None:
        return None, first
    try:
        cells = json.loads(nb_path.read_text())["cells"]
        marker = [c for c in cells if "papermill-error-cell-tag" in c.get("metadata", {}).get("tags", [])]
        cells = [c for c in cells if c not in marker]
        injected = sum(1 for c in cells[:index]
                       if "injected-parameters" in c.get("metadata", {}).get("tags", []))
        return index - injected, first
    except (OSError, ValueError, KeyError):
        return index, first


def execute_notebook(name: str, source: Path, executed: Path, parameters: Mapping[str, Any], *,
                     cwd: Path, code: str, force: bool = False, progress: bool = True,
                     profile: str = "", log: Any = None) -> NotebookRun:
    """Execute ``source`` into ``executed`` with papermill unless an up-to-date copy exists.

    The output is written to a temporary file and moved into place only on success; on failure
    it is moved to ``NAME.failed.ipynb`` and :class:`NotebookFailed` is raised.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    source, executed = Path(source), Path(executed)
    if not source.is_file():
        raise BookError(f"notebook {name}: source {source} not found")
    params = dict(parameters)
    key = run_hash(params, source.read_bytes(), code)
    shown = _display_path(executed, cwd)
    if not force and executed.is_file() and stored_hash(executed) == key:
        log(f"{name}: up to date, reusing {shown}")
        return NotebookRun(name, "reused", 0.0, shown, key, params, _stored(executed).get("seconds"))
    executed.parent.mkdir(parents=True, exist_ok=True)
    for left in stale_running_copies(executed):  # left by a killed earlier build
        left.unlink(missing_ok=True)
    failed = executed.with_name(f"{executed.stem}.failed.ipynb")
    tmp = executed.with_name(f".{executed.stem}.{os.getpid()}.running.ipynb")
    log(f"{name}: executing {_display_path(source, cwd)} -> {shown}")
    start = time.perf_counter()
    try:
        nb = papermill.execute_notebook(str(source), str(tmp), parameters=params, kernel_name="python3",
                                        progress_bar=progress, cwd=str(cwd))
    except PapermillExecutionError as exc:
        index, first = _error_cell(exc, tmp)
        os.replace(tmp, failed)
        raise NotebookFailed(name, index, first, f"{exc.ename}: {exc.evalue}", failed) from None
    except BaseException as exc:
        if tmp.exists():
            os.replace(tmp, failed)
        if isinstance(exc, Exception):
            raise NotebookFailed(name, None, "", f"{type(exc).__name__}: {exc}",
                                 failed if failed.exists() else None) from exc
        raise
    seconds = time.perf_counter() - start
    import nbformat

    nb.metadata.setdefault("papermill", {})
    nb.metadata["papermill"]["input_path"] = _display_path(source, cwd)
    nb.metadata["papermill"]["output_path"] = shown
    nb.metadata[METADATA_KEY] = {"hash": key, "code_hash": code, "profile": profile,
                                 "parameters": params, "seconds": round(seconds, 2),
                                 "source": _display_path(source, cwd)}
    from ttl.provenance import atomic_write_bytes

    atomic_write_bytes(executed, nbformat.writes(nb).encode())
    tmp.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)
    log(f"{name}: done in {seconds:.1f} s")
    return NotebookRun(name, "executed", seconds, shown, key, params, round(seconds, 2))


# --------------------------------------------------------------------------------------------
# the whole profile


@dataclasses.dataclass
class BookRun:
    """Result of :func:`run_book`."""

    profile: str
    notebooks: list[NotebookRun]
    executed_dir: Path
    results_dir: Path
    record: Path | None = None
    html_dir: Path | None = None


def is_committed(profile: Profile) -> bool:
    """True for the shipped profile whose executed notebooks and results are the committed book
    (only in a source checkout: an installed package writes every profile under ``_build/``)."""
    return (in_checkout() and profile.name == COMMITTED_PROFILE and profile.path is not None
            and Path(profile.path).resolve() == (PROFILES_DIR / f"{COMMITTED_PROFILE}.yaml").resolve())


def default_executed_dir(profile: Profile | None = None, root: Path = WORK_ROOT) -> Path:
    """``book/executed`` for the committed profile; ``_build/<profile>/executed`` for any other, so a
    copied or teaching profile never overwrites the committed chapters."""
    if profile is None or is_committed(profile):
        return Path(root) / EXECUTED_SUBDIR
    return Path(root) / "_build" / profile.name / "executed"


def default_results_dir(profile: Profile, root: Path = WORK_ROOT) -> Path:
    """``results/<profile>`` for the committed profile; ``_build/<profile>/results`` for any other."""
    if is_committed(profile):
        return Path(root) / "results" / profile.name
    return Path(root) / "_build" / profile.name / "results"


def default_build_dir(profile: Profile, root: Path = WORK_ROOT) -> Path:
    """Where the HTML goes (``<dir>/_build/html``): the root for the committed profile, else ``_build/<profile>``."""
    return Path(root) if is_committed(profile) else Path(root) / "_build" / profile.name


def _write_record(path: Path, profile: Profile, runs: Sequence[NotebookRun], params: Mapping[str, Any],
                  started: float, extra: Mapping[str, Any] | None = None) -> Path:
    from ttl.provenance import write_result

    payload = {"profile": profile.name, "profile_file": params.get("profile_file"),
               "notebooks": [dataclasses.asdict(r) for r in runs], **(extra or {})}
    return write_result(path, payload, params, wall_time_s=time.perf_counter() - started)


def execute_profile(profile: Profile, *, only: Sequence[str] | None = None, force: bool = False,
                    executed_dir: Path | None = None, results_dir: Path | None = None,
                    notebooks_dir: Path = NOTEBOOKS_DIR, root: Path = WORK_ROOT,
                    code_dir: Path = PACKAGE_DIR, progress: bool = True, log: Any = None,
                    runs_dir: Path | None = None) -> BookRun:
    """Execute (or reuse) the profile's notebooks in order; write ``<results>/book_run.json``.

    ``runs_dir`` replaces the profile's ``runs_dir`` (where trained models live) for every notebook
    that declares it, e.g. a temporary folder in tests."""
    root = Path(root).resolve()
    executed_dir = Path(executed_dir or default_executed_dir(profile, root)).resolve()
    results_dir = Path(results_dir or default_results_dir(profile, root)).resolve()
    selected = list(only) if only else profile.names()
    unknown = [n[:-6] if n.endswith(".ipynb") else n for n in selected]
    unknown = [n for n in unknown if n not in profile.names()]
    if unknown:
        raise ConfigError(f"--only: {unknown} not in profile {profile.name!r} (it lists {profile.names()})")
    selected = {n[:-6] if n.endswith(".ipynb") else n for n in selected}
    missing = [n for n in selected if not (Path(notebooks_dir) / f"{n}.ipynb").is_file()]
    if missing:
        have = sorted(p.stem for p in Path(notebooks_dir).glob("*.ipynb"))
        raise BookError(f"profile {profile.name!r} lists notebook(s) {missing} but "
                        f"{_display_path(Path(notebooks_dir), root)}/ holds only {have}")
    check_defaults_declared(profile, notebooks_dir)
    code = code_hash(code_dir)
    started = time.perf_counter()
    record_params = {"profile": profile.name,
                     "profile_file": _display_path(profile.path, root) if profile.path else None,
                     "only": sorted(selected) if only else None, "force": force,
                     "executed_dir": _display_path(executed_dir, root),
                     "results_dir": _display_path(results_dir, root), "code_hash": code}
    runs: list[NotebookRun] = []
    record = results_dir / "book_run.json"
    for i, spec in enumerate(profile.notebooks, 1):
        executed = executed_dir / f"{spec.name}.ipynb"
        if spec.name not in selected:
            runs.append(NotebookRun(spec.name, "not selected", 0.0, _display_path(executed, root),
                                    stored_hash(executed) if executed.is_file() else None, {}))
            continue
        source = Path(notebooks_dir) / f"{spec.name}.ipynb"
        declared = declared_parameters(source)
        params = notebook_parameters(profile, spec, declared, _display_path(results_dir / spec.name, root))
        if runs_dir is not None and declared is not None and "runs_dir" in declared:
            params["runs_dir"] = _display_path(Path(runs_dir).resolve(), root)
        if log is not None:
            log(f"[{i}/{len(profile.notebooks)}] {spec.name}")
        try:
            runs.append(execute_notebook(spec.name, source, executed, params, cwd=root, code=code,
                                         force=force, progress=progress, profile=profile.name, log=log))
        except NotebookFailed as exc:
            runs.append(NotebookRun(spec.name, "failed", 0.0, _display_path(executed, root), None, params))
            _write_record(record, profile, runs, record_params, started, {"error": str(exc)})
            raise
    _write_record(record, profile, runs, record_params, started)
    return BookRun(profile.name, runs, executed_dir, results_dir, record)


# --------------------------------------------------------------------------------------------
# the HTML book


def book_toc(template: Mapping[str, Any], chapters: Sequence[str],
             executed_prefix: str = EXECUTED_SUBDIR.as_posix()) -> dict[str, Any]:
    """The toc ``template`` with its executed-notebook entries replaced by ``chapters``.

    ``chapters`` are notebook names; they take the place of the first entry whose file lies under
    ``executed_prefix`` (the others are dropped). A part left empty is removed.
    """
    toc = copy.deepcopy(dict(template))
    prefix = executed_prefix.rstrip("/") + "/"
    placed = False

    def rewrite(entries: list[Any]) -> list[Any]:
        nonlocal placed
        out: list[Any] = []
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("file", "")).startswith(prefix):
                if not placed:
                    out.extend({"file": f"{prefix}{c}"} for c in chapters)
                    placed = True
                continue
            if isinstance(entry, dict):
                entry = dict(entry)
                for key in ("chapters", "sections"):
                    if key in entry:
                        entry[key] = rewrite(list(entry[key]))
                        if not entry[key]:
                            del entry[key]
            out.append(entry)
        return out

    for key in ("parts", "chapters"):
        if key in toc:
            toc[key] = rewrite(list(toc[key]))
            if key == "parts":
                toc[key] = [p for p in toc[key] if p.get("chapters")]
            if not toc[key]:
                del toc[key]
    if not placed and chapters:
        raise BookError(f"the table of contents has no entry under {prefix}: add one "
                        f"(e.g. '- file: {prefix}01_data') where the notebook chapters belong")
    return toc


def book_sources(root: Path) -> Path:
    """The folder whose ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/`` make the book:
    ``root`` when it holds them (the repository, a test's copy), else the shipped sources."""
    root = Path(root)
    return root if (root / "_config.yml").is_file() and (root / "_toc.yml").is_file() else SOURCE_ROOT


def stage_book(root: Path, stage: Path, executed_dir: Path, chapters: Sequence[str],
               profile: Profile | None = None, results_dir: Path | None = None) -> Path:
    """Copy ``_config.yml``, the book's sources and the executed notebooks into ``stage`` with a
    table of contents listing ``chapters``. Unchanged files keep their time stamps.

    Each notebook's default ``parameters`` cell is hidden (:func:`tag_parameter_cells`). With
    ``profile`` and ``results_dir``, the generated page parts (verdicts, key figure, sources) are
    written and the run's facts become MyST substitutions (:mod:`ttl.book_pages`)."""
    root, stage = book_sources(Path(root)), Path(stage)
    for required in ("_config.yml", "_toc.yml"):
        if not (root / required).is_file():
            raise BookError(f"{root / required} not found: the book needs it")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    shutil.copy2(root / "_config.yml", stage / "_config.yml")
    executed_rel = EXECUTED_SUBDIR.as_posix()
    book_dir = root / "book"
    if book_dir.is_dir():
        shutil.copytree(book_dir, stage / "book",
                        ignore=lambda d, names: ["executed"] if Path(d) == book_dir else
                        [n for n in names if n in ("__pycache__", ".ipynb_checkpoints")])
    (stage / executed_rel).mkdir(parents=True, exist_ok=True)
    for name in chapters:
        shutil.copy2(Path(executed_dir) / f"{name}.ipynb", stage / executed_rel / f"{name}.ipynb")
        tag_parameter_cells(stage / executed_rel / f"{name}.ipynb")
    toc = book_toc(yaml.safe_load((root / "_toc.yml").read_text()), chapters)
    (stage / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    if profile is not None and results_dir is not None:
        from ttl.book_pages import write_generated

        facts = write_generated(stage, Path(results_dir), profile.name, chapters, profile.hardware, root)
        config = yaml.safe_load((stage / "_config.yml").read_text())
        subs = config.setdefault("parse", {}).setdefault("myst_substitutions", {}) or {}
        subs.update(facts)
        config["parse"]["myst_substitutions"] = subs
        (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return stage


BUILD_LOCK = ".book_build.lock"


@contextlib.contextmanager
def staged(root: Path, build_dir: Path, executed_dir: Path, chapters: Sequence[str],
           profile: Profile | None = None, results_dir: Path | None = None, log: Any = None) -> Iterator[Path]:
    """:func:`stage_book` into ``<build_dir>/_build/book_source``, the folder held by this build alone
    until the block ends.

    Builds into one ``build_dir`` share the staged sources and Jupyter Book's output (``_build/html``,
    its doctrees), so a second build waits, with a message, until the first is done: an exclusive
    ``flock`` on ``<build_dir>/_build/.book_build.lock``, released by the system when a build dies
    (a killed build never leaves a stale lock).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    lock_path = Path(build_dir) / "_build" / BUILD_LOCK
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        _lock_exclusive(lock, lambda: log(f"another build of this book is writing {lock_path.parent}; "
                                          "waiting for it to end"))
        try:
            yield stage_book(root, Path(build_dir) / "_build" / "book_source", executed_dir, chapters,
                             profile, results_dir)
        finally:
            _unlock(lock)


def _lock_exclusive(file: Any, on_wait: Any) -> None:
    """Take an exclusive lock on ``file``, calling ``on_wait()`` first when someone else holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: builds into one folder are not serialised there
        return
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        on_wait()
        fcntl.flock(file, fcntl.LOCK_EX)


def _unlock(file: Any) -> None:
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(file, fcntl.LOCK_UN)


def tag_parameter_cells(path: Path) -> bool:
    """Hide a papermill notebook's default ``parameters`` cell in the book when papermill
    injected the values actually used (the ``injected-parameters`` cell, which stays visible).

    The default cell gets the ``remove-cell`` tag in this (staged) copy only: papermill reads the
    source notebook's ``parameters`` tag, which is untouched. Returns whether a cell was hidden.
    """
    nb = json.loads(Path(path).read_text())
    cells = nb.get("cells", [])
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    if not any("injected-parameters" in t for t in tags):
        return False
    hidden = False
    for cell, cell_tags in zip(cells, tags):
        if "parameters" in cell_tags and "remove-cell" not in cell_tags:
            cell.setdefault("metadata", {})["tags"] = [*cell_tags, "remove-cell"]
            hidden = True
    if hidden:
        Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return hidden


def jupyter_book_command() -> list[str]:
    """How to call Jupyter Book 1.x with this interpreter (the package has no ``__main__``)."""
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; "
            "sys.argv[0] = 'jupyter-book'; sys.exit(main())"]


def build_html(chapters: Sequence[str], executed_dir: Path, build_dir: Path | None = None,
               root: Path = WORK_ROOT, log: Any = None, profile: Profile | None = None,
               results_dir: Path | None = None) -> Path:
    """Build the HTML book (strict) into ``<build_dir>/_build/html``; return that folder.

    ``build_dir`` defaults to ``root`` (so the book lands in ``_build/html``). The sources are
    staged in ``<build_dir>/_build/book_source`` so the repository's files are never modified; a
    concurrent build into the same ``build_dir`` waits for this one (:func:`staged`).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    root = Path(root).resolve()
    build_dir = Path(build_dir or root).resolve()
    absent = [c for c in chapters if not (Path(executed_dir) / f"{c}.ipynb").is_file()]
    if absent:
        log(f"not executed yet, left out of the book: {', '.join(absent)}")
    chapters = [c for c in chapters if c not in absent]
    html = build_dir / "_build" / "html"
    with staged(root, build_dir, Path(executed_dir), chapters, profile, results_dir, log) as stage:
        cmd = jupyter_book_command() + ["build", str(stage), "--path-output", str(build_dir),
                                        "-W", "-n", "--keep-going", "--all"]
        log(f"building the book: jupyter-book build {_display_path(stage, root)} "
            f"--path-output {_display_path(build_dir, root)} -W -n --keep-going --all")
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + "\n" + proc.stderr)
        # name the files the user edits, not their staged copies
        output = output.replace(f"{stage / EXECUTED_SUBDIR}{os.sep}", f"{Path(executed_dir).resolve()}{os.sep}")
        output = output.replace(f"{stage}{os.sep}", f"{root}{os.sep}")
        log_path = build_dir / "_build" / "book_build.log"
        log_path.write_text(output)
    if proc.returncode != 0:
        lines = output.splitlines()
        problems = [ln for ln in lines if "WARNING" in ln or "ERROR" in ln] or lines[-15:]
        raise BookError("jupyter-book build failed (strict mode: every warning is an error):\n  "
                        + "\n  ".join(problems[:30]) + f"\nfull log: {log_path}")
    log(f"book built in {time.perf_counter() - start:.1f} s: {html / 'index.html'}")
    return html


def executed_with_other_code(chapters: Sequence[str], executed_dir: Path, code_dir: Path = PACKAGE_DIR) -> list[str]:
    """The chapters whose executed notebook records another package code hash than ``code_dir``'s
    (executed by an earlier version of ``ttl``; absent chapters are not listed)."""
    code = code_hash(code_dir)
    return [c for c in chapters if (Path(executed_dir) / f"{c}.ipynb").is_file()
            and _stored(Path(executed_dir) / f"{c}.ipynb").get("code_hash") != code]


def build_only(profile: Profile | str | os.PathLike, *, executed_dir: Path | None = None,
               results_dir: Path | None = None, build_dir: Path | None = None, root: Path = WORK_ROOT,
               log: Any = None) -> Path:
    """Build the HTML from the profile's executed notebooks as they are, executing nothing, and say
    which of them an earlier version of the code executed (they show the run they record, with
    its provenance; ``ttl book`` without ``--html-only`` would execute those again)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    root = Path(root).resolve()
    executed_dir = Path(executed_dir) if executed_dir is not None else default_executed_dir(profile, root)
    results_dir = Path(results_dir) if results_dir is not None else default_results_dir(profile, root)
    older = executed_with_other_code(profile.names(), executed_dir)
    if older:
        log(f"executed by an earlier version of the ttl code (shown as executed, not re-run): {', '.join(older)}")
    build_dir = Path(build_dir) if build_dir is not None else default_build_dir(profile, root)
    return build_html(profile.names(), executed_dir, build_dir, root, log, profile, results_dir)


def run_book(profile: Profile | str | os.PathLike, *, only: Sequence[str] | None = None,
             force: bool = False, executed_dir: Path | None = None, results_dir: Path | None = None,
             build: bool = True, build_dir: Path | None = None, root: Path = WORK_ROOT,
             notebooks_dir: Path | None = None, progress: bool = True, log: Any = None,
             runs_dir: Path | None = None) -> BookRun:
    """Execute the profile's notebooks, then (with ``build``) build the HTML book."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    root = Path(root).resolve()
    build_dir = Path(build_dir) if build_dir is not None else default_build_dir(profile, root)
    start = time.perf_counter()
    result = execute_profile(profile, only=only, force=force, executed_dir=executed_dir,
                             results_dir=results_dir, notebooks_dir=notebooks_dir or book_sources(root) / "notebooks",
                             root=root, progress=progress, log=log, runs_dir=runs_dir)
    if build:
        t0 = time.perf_counter()
        result.html_dir = build_html(profile.names(), result.executed_dir, build_dir, root, log,
                                     profile, result.results_dir)
        from ttl.provenance import write_result

        record = json.loads(result.record.read_text())
        params = {**record.pop("provenance", {}).get("params", {}),
                  "build_dir": _display_path(Path(build_dir or root), root)}
        record["book_build"] = {"html": _display_path(result.html_dir, root),
                                "seconds": round(time.perf_counter() - t0, 2)}
        write_result(result.record, record, params, wall_time_s=time.perf_counter() - start)
    return result
