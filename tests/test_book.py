"""The book runner: profile validation, reuse of up-to-date notebooks, failures, the toc."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ttl import book
from ttl.cli import main
from ttl.errors import ConfigError, TTLError

REPO = Path(__file__).resolve().parent.parent


def write_profile(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------ profile validation


@pytest.mark.parametrize("data, expected", [
    ({"notebooks": ["a"], "defualts": {}}, "unknown key 'defualts' (known here: description, hardware"),
    ({"defaults": [1, 2], "notebooks": ["a"]}, "key 'defaults': expected a mapping, got list"),
    ({"notebooks": {"a": {}}}, "key 'notebooks': expected a list, got dict"),
    ({"notebooks": ["a"], "time_budget_minutes": "ten"}, "key 'time_budget_minutes': expected a number, got str 'ten'"),
    ({"defaults": {}}, "missing key 'notebooks'"),
    ({"notebooks": []}, "'notebooks' is empty"),
    ({"notebooks": [{"name": "a", "epochs": 3}]}, "unknown key 'notebooks[0].epochs' (known here: name, parameters) (put notebook parameters under"),
    ({"notebooks": [{"name": "a.ipynb"}]}, "notebooks[0].name must be a notebook name"),
    ({"notebooks": [{"parameters": {}}]}, "missing required key 'notebooks[0].name'"),
    ({"notebooks": [3]}, "key 'notebooks[0]': expected a string or a mapping, got int 3"),
    ({"notebooks": ["a", "a"]}, "notebook 'a' is listed twice"),
    ({"notebooks": [{"name": "a", "parameters": [1]}]}, "key 'notebooks[0].parameters': expected a mapping, got list"),
    ({"defaults": {"bad-name": 1}, "notebooks": ["a"]}, "'bad-name' is not a valid Python identifier"),
    ({"defaults": {"output_dir": "x"}, "notebooks": ["a"]}, "'output_dir' is set by the runner"),
])
def test_invalid_profiles_name_file_and_key(tmp_path, data, expected):
    path = write_profile(tmp_path / "mine.yaml", data)
    with pytest.raises(ConfigError) as err:
        book.load_profile(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_nested_values_are_checked_too():
    with pytest.raises(ConfigError, match=r"profile 'p': defaults\.sizes\.train: unsupported value"):
        book.parse_profile({"defaults": {"sizes": {"train": {1, 2}}}, "notebooks": ["a"]}, "p")


def test_yaml_dates_are_rejected_as_parameter_values(tmp_path):
    path = tmp_path / "dated.yaml"
    path.write_text("defaults:\n  since: 2024-01-31\nnotebooks: [a]\n")
    with pytest.raises(ConfigError, match=r"defaults\.since: unsupported value .*date"):
        book.load_profile(path)


def test_unknown_profile_name_lists_shipped_ones():
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*smoke"):
        book.load_profile("nope")


def test_cli_exits_2_naming_the_bad_key(tmp_path, capsys):
    path = write_profile(tmp_path / "bad.yaml", {"notebooks": ["01_data"], "default": {"seed": 1}})
    assert main(["book", "--profile", str(path), "--no-build"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'default'" in err


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_shipped_profiles_match_the_notebooks(name):
    """Every shipped profile lists existing notebooks, and its overrides are declared by them."""
    profile = book.load_profile(name)
    assert profile.notebooks and profile.description and profile.hardware
    for spec in profile.notebooks:
        source = REPO / "notebooks" / f"{spec.name}.ipynb"
        assert source.is_file(), f"{name}: {source} missing"
        declared = book.declared_parameters(source)
        assert declared is not None and {"output_dir", "profile"} <= set(declared)
        params = book.notebook_parameters(profile, spec, declared, f"results/{name}/{spec.name}")
        assert params["profile"] == name and set(params) <= set(declared)


# ------------------------------------------------------------------ executing notebooks


def make_notebook(path: Path, fail_on: str = "fail") -> Path:
    """A throwaway notebook: appends one line to count.txt per execution; can be told to fail."""
    nb = new_notebook(cells=[
        new_markdown_cell("# Throwaway"),
        new_code_cell("x = 1\nfail = False\nunused = 0\noutput_dir = '.'\nprofile = ''",
                      metadata={"tags": ["parameters"]}),
        new_code_cell("from pathlib import Path\nout = Path(output_dir)\nout.mkdir(parents=True, exist_ok=True)"),
        new_code_cell(f"if {fail_on}:\n    raise ValueError(f'boom with x={{x}}')\n"
                      "with open(out / 'count.txt', 'a') as f:\n    f.write(f'{x}\\n')"),
        new_code_cell("print('x is', x)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def setup(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    make_notebook(nbdir / "toy.ipynb")
    code = tmp_path / "code"
    code.mkdir()
    (code / "mod.py").write_text("A = 1\n")
    return {"root": tmp_path, "notebooks": nbdir, "code": code, "executed": tmp_path / "executed",
            "results": tmp_path / "results"}


def run(setup, data, **kw):
    profile = book.parse_profile(data, "toy", None)
    return book.execute_profile(profile, executed_dir=setup["executed"], results_dir=setup["results"],
                                notebooks_dir=setup["notebooks"], root=setup["root"], code_dir=setup["code"],
                                progress=False, **kw)


def test_a_default_no_notebook_declares_is_an_error(setup):
    """A typo in a profile's defaults (``contrats``) used to be dropped silently."""
    with pytest.raises(ConfigError, match=r"defaults 'xx' \(did you mean 'x'\?\) are declared by none"):
        run(setup, {"defaults": {"x": 2, "xx": 3}, "notebooks": [{"name": "toy"}]})
    assert not (setup["results"] / "toy").exists()  # refused before anything ran


def test_every_shipped_profile_declares_only_known_defaults():
    for path in sorted(book.PROFILES_DIR.glob("*.yaml")):
        book.check_defaults_declared(book.load_profile(path.stem))


def count(setup) -> list[str]:
    return (setup["results"] / "toy" / "count.txt").read_text().split()


def statuses(res) -> list[str]:
    return [r.status for r in res.notebooks]


def test_rerun_only_when_parameters_notebook_or_code_change(setup):
    data = {"defaults": {"x": 2}, "notebooks": [{"name": "toy"}]}
    first = run(setup, data)
    assert statuses(first) == ["executed"] and count(setup) == ["2"]
    executed = setup["executed"] / "toy.ipynb"
    meta = json.loads(executed.read_text())["metadata"]["ttl_book"]
    # defaults the notebook does not declare are not passed; the runner adds output_dir and profile
    # (output_dir is relative to the root, where the kernel runs, when it lies inside the root)
    assert meta["parameters"] == {"x": 2, "output_dir": "results/toy", "profile": "toy"}
    record = json.loads((setup["results"] / "book_run.json").read_text())
    assert record["notebooks"][0]["status"] == "executed" and "provenance" in record

    assert statuses(run(setup, data)) == ["reused"] and count(setup) == ["2"]
    # an undeclared default does not reach the notebook, so changing it reruns nothing

    changed = {"defaults": {"x": 2}, "notebooks": [{"name": "toy", "parameters": {"x": 3}}]}
    assert statuses(run(setup, changed)) == ["executed"] and count(setup) == ["2", "3"]
    assert statuses(run(setup, changed)) == ["reused"]

    (setup["code"] / "mod.py").write_text("A = 2\n")  # the package's code changed
    assert statuses(run(setup, changed)) == ["executed"] and count(setup) == ["2", "3", "3"]

    assert statuses(run(setup, changed, force=True)) == ["executed"] and len(count(setup)) == 4


def test_override_the_notebook_does_not_declare_is_an_error(setup):
    data = {"notebooks": [{"name": "toy", "parameters": {"epochs": 3}}]}
    with pytest.raises(ConfigError, match=r"notebook toy has no parameter\(s\) \['epochs'\].*declares"):
        run(setup, data)


def test_missing_notebook_and_unknown_only_are_errors(setup):
    with pytest.raises(TTLError, match=r"lists notebook\(s\) \['ghost'\].*holds only \['toy'\]"):
        run(setup, {"notebooks": ["toy", "ghost"]})
    with pytest.raises(ConfigError, match=r"--only: \['other'\] not in profile"):
        run(setup, {"notebooks": ["toy"]}, only=["other"])


def test_failure_names_cell_and_error_and_keeps_the_good_notebook(setup):
    good = run(setup, {"notebooks": [{"name": "toy", "parameters": {"x": 5}}]})
    assert statuses(good) == ["executed"]
    executed = setup["executed"] / "toy.ipynb"
    good_bytes = executed.read_bytes()

    with pytest.raises(book.NotebookFailed) as err:
        run(setup, {"notebooks": [{"name": "toy", "parameters": {"x": 6, "fail": True}}]})
    exc = err.value
    assert isinstance(exc, TTLError)
    assert exc.name == "toy" and exc.cell_index == 3  # the 4th cell of the source notebook
    assert exc.first_line == "if fail:"
    assert exc.error == "ValueError: boom with x=6"
    msg = str(exc)
    assert "notebook toy failed in cell 3" in msg and "`if fail:`" in msg and "ValueError: boom with x=6" in msg

    assert executed.read_bytes() == good_bytes  # the previous good notebook is untouched
    failed = setup["executed"] / "toy.failed.ipynb"
    assert exc.failed_path == failed and str(failed) in msg
    outputs = [o for c in json.loads(failed.read_text())["cells"] for o in c.get("outputs", [])]
    assert any(o["output_type"] == "error" and o["ename"] == "ValueError" for o in outputs)
    assert sorted(p.name for p in setup["executed"].iterdir()) == ["toy.failed.ipynb", "toy.ipynb"]
    record = json.loads((setup["results"] / "book_run.json").read_text())
    assert record["notebooks"][0]["status"] == "failed" and "boom" in record["error"]

    # the good parameters are still up to date, and a success removes the stale failure
    assert statuses(run(setup, {"notebooks": [{"name": "toy", "parameters": {"x": 5}}]})) == ["reused"]
    assert statuses(run(setup, {"notebooks": [{"name": "toy", "parameters": {"x": 7}}]})) == ["executed"]
    assert not failed.exists()


def test_cli_reports_a_failing_notebook_with_exit_code_2(setup, capsys):
    path = write_profile(setup["root"] / "p.yaml",
                         {"notebooks": [{"name": "toy", "parameters": {"fail": True}}]})
    code = main(["book", "--profile", str(path), "--notebooks-dir", str(setup["notebooks"]),
                 "--executed-dir", str(setup["executed"]), "--results-dir", str(setup["results"]),
                 "--no-build", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "notebook toy failed in cell 3" in err and "ValueError: boom with x=1" in err
    assert not (setup["executed"] / "toy.ipynb").exists()


# ------------------------------------------------------------------ table of contents


def test_toc_lists_the_profile_notebooks_in_order():
    template = yaml.safe_load((REPO / "_toc.yml").read_text())
    toc = book.book_toc(template, ["03_b", "01_a"])
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert files.index("book/executed/03_b") + 1 == files.index("book/executed/01_a")
    assert [f for f in files if f.startswith("book/executed/")] == ["book/executed/03_b", "book/executed/01_a"]
    for page in ("book/methods", "book/discussion", "book/reproduce", "book/teaching"):
        assert page in files and (REPO / f"{page}.md").is_file()
    assert toc["root"] == "book/intro" and (REPO / "book/intro.md").is_file()
    # no notebooks: the experiments part disappears instead of being left empty
    empty = book.book_toc(template, [])
    assert all(part["chapters"] for part in empty["parts"])
    assert not any(c["file"].startswith("book/executed/") for p in empty["parts"] for c in p["chapters"])


def test_toc_without_a_notebook_slot_is_an_error():
    with pytest.raises(TTLError, match="no entry under book/executed/"):
        book.book_toc({"format": "jb-book", "root": "intro", "chapters": [{"file": "a"}]}, ["01_data"])


def test_code_hash_sees_every_python_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 1\n")
    (tmp_path / "notes.txt").write_text("ignored")
    h1 = book.code_hash(tmp_path)
    (tmp_path / "notes.txt").write_text("changed")
    assert book.code_hash(tmp_path) == h1
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    assert book.code_hash(tmp_path) != h1


def test_strict_build_fails_on_a_broken_reference(tmp_path):
    """Jupyter Book runs with -W -n: a warning (here a reference to a missing page) is an error."""
    root = tmp_path / "repo"
    (root / "book" / "executed").mkdir(parents=True)
    (root / "_config.yml").write_text("title: Tiny\nonly_build_toc_files: true\n"
                                      "execute:\n  execute_notebooks: 'off'\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "  - file: book/executed/toy\n  - file: book/other\n")
    (root / "book" / "intro.md").write_text("# Intro\n\nSee {doc}`other`.\n")
    (root / "book" / "other.md").write_text("# Other\n\nText.\n")
    html = book.build_html([], root / "book" / "executed", tmp_path / "out", root=root, log=lambda m: None)
    assert (html / "book" / "other.html").is_file() and not (root / "_build").exists()
    (root / "book" / "intro.md").write_text("# Intro\n\nSee {doc}`missing_page`.\n")
    with pytest.raises(book.BookError, match=r"(?s)strict mode.*missing_page.*full log: ") as err:
        book.build_html([], root / "book" / "executed", tmp_path / "out", root=root, log=lambda m: None)
    assert f"{root / 'book' / 'intro.md'}:3: WARNING" in str(err.value)  # the user's file, not the staged copy


def _tiny_book(root: Path) -> Path:
    (root / "book" / "executed").mkdir(parents=True)
    (root / "_config.yml").write_text("title: Tiny\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/executed/toy\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    return root


def test_a_second_build_into_the_same_folder_waits_for_the_staged_sources(tmp_path):
    """Two builds at once (here two threads): the second must not replace the first's staged sources
    while the first builds from them; it waits, and says so, until the first is done."""
    import threading

    root = _tiny_book(tmp_path / "repo")
    waiting_or_done = threading.Event()
    second: dict[str, object] = {}

    def second_build() -> None:
        def log(msg: str) -> None:
            if "waiting" in msg:
                second["message"] = msg
                waiting_or_done.set()
        try:
            with book.staged(root, tmp_path / "out", root / "book" / "executed", [], log=log) as stage:
                second["stage"] = sorted(p.name for p in stage.iterdir())
        finally:
            waiting_or_done.set()

    with book.staged(root, tmp_path / "out", root / "book" / "executed", [], log=print) as stage:
        (stage / "first-build-was-here").write_text("x")
        other = threading.Thread(target=second_build)
        other.start()
        assert waiting_or_done.wait(120), "the second build neither waited nor finished"
        assert (stage / "first-build-was-here").exists(), "the second build replaced the first's staged sources"
    other.join()
    assert "another build of this book is writing" in second["message"]
    assert "_toc.yml" in second["stage"] and "first-build-was-here" not in second["stage"]


# ------------------------------------------------------------------ staging: parameters, generated pages


def _param_notebook(path: Path, injected: bool) -> Path:
    cells = [new_markdown_cell("# T"), new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    if injected:
        cells.append(new_code_cell("# Parameters\nx = 2\n", metadata={"tags": ["injected-parameters"]}))
    cells.append(new_code_cell("print(x)"))
    nbformat.write(new_notebook(cells=cells), str(path))
    return path


def test_only_the_injected_parameters_cell_is_shown(tmp_path):
    """The default parameters cell is removed from the page (tag ``remove-cell``) when papermill
    injected the values used; papermill's own ``parameters`` tag stays."""
    with_injected = _param_notebook(tmp_path / "a.ipynb", injected=True)
    assert book.tag_parameter_cells(with_injected)
    cells = nbformat.read(str(with_injected), as_version=4).cells
    assert cells[1].metadata.tags == ["parameters", "remove-cell"]
    assert cells[2].metadata.tags == ["injected-parameters"]
    assert not book.tag_parameter_cells(with_injected)  # idempotent
    plain = _param_notebook(tmp_path / "b.ipynb", injected=False)
    assert not book.tag_parameter_cells(plain)
    assert nbformat.read(str(plain), as_version=4).cells[1].metadata.tags == ["parameters"]


def _fake_results(results: Path) -> None:
    (results / "02_feature_transferability").mkdir(parents=True)
    (results / "05_truncation_benchmark").mkdir()
    (results / "02_feature_transferability" / "best_cuts.csv").write_text(
        "dataset,cut,cut_index,val_auroc_mean\nphantom-low,layer2.1,4,0.8618\n")
    (results / "02_feature_transferability" / "finetune_curves.png").write_bytes(b"\x89PNG fake")
    (results / "05_truncation_benchmark" / "benchmark.csv").write_text(
        "dataset,label,test_auroc_mean,test_auroc_ci_low,test_auroc_ci_high,strategy,cut,params\n"
        "phantom-low,full,0.8296,0.80,0.85,full,full,1000\nphantom-low,ttl(layer2.1),0.983,0.97,0.99,ttl,layer2.1,250\n")
    (results / "05_truncation_benchmark" / "comparisons.csv").write_text(
        "dataset,other,diff,ci_low,ci_high,verdict\nphantom-low,full,0.153,0.12,0.19,held\n"
        "phantom-low,lwft(layer2.1),0.01,-0.01,0.03,held\n")
    hw = {"cpu_model": "Test CPU 9000", "cpu_count": 2, "device": "cpu"}
    (results / "book_run.json").write_text(json.dumps({
        "notebooks": [{"name": "01_data", "executed_seconds": 60.0}, {"name": "02", "executed_seconds": 120.0}],
        "provenance": {"hardware": hw, "git": {"commit": "abcdef1234567", "dirty": False}}}))


def test_stage_writes_the_generated_pages_and_the_run_facts(tmp_path):
    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    (root / "weights").mkdir()
    (root / "results" / "sources").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        (root / name).write_text((REPO / name).read_text())
    (root / "weights" / "manifest.json").write_text((REPO / "weights" / "manifest.json").read_text())
    (root / "results" / "sources" / "fractal_examples.png").write_bytes(b"\x89PNG cached")
    (root / "book" / "intro.md").write_text("# Intro\n")
    results = tmp_path / "results"
    _fake_results(results)
    executed = tmp_path / "executed"
    executed.mkdir()
    _param_notebook(executed / "02_feature_transferability.ipynb", injected=True)
    profile = book.parse_profile({"hardware": "2 CPU cores", "notebooks": ["02_feature_transferability"]},
                                 "quick")
    stage = book.stage_book(root, tmp_path / "stage", executed, ["02_feature_transferability"], profile, results)
    gen = stage / "book" / "_generated"
    verdicts = (gen / "verdicts.md").read_text()
    assert verdicts.startswith("~~~{table}") and ":name: tbl-verdicts" in verdicts
    assert "cut chosen on validation: phantom-low layer2.1" in verdicts
    assert "TTL above full TL (interval > 0) on 1 of 1 levels" in verdicts
    assert "'not worse' held in 2 of 2 (level, rival) comparisons" in verdicts
    assert "| 1. " in verdicts and "| held |" in verdicts
    assert (gen / "key_figure.png").read_bytes() == b"\x89PNG fake"
    assert ":name: fig-key-result" in (gen / "key_figure.md").read_text()
    assert (gen / "fractals.png").read_bytes() == b"\x89PNG cached"
    weights = (gen / "source_weights.md").read_text()
    assert "weights/resnet18_fractal.pt" in weights and ":name: tbl-source-weights" in weights
    subs = yaml.safe_load((stage / "_config.yml").read_text())["parse"]["myst_substitutions"]
    assert subs["run_profile"] == "quick" and subs["run_hardware"] == "Test CPU 9000, 2 CPU cores"
    assert subs["run_wall_time"] == "3.0 minutes" and subs["run_commit"] == "abcdef1"
    assert subs["run_profile_hardware"] == "2 CPU cores"
    assert subs["verdict_2"] == "held" and subs["ttl_param_share"] == "25%"  # the discussion's numbers
    assert subs["bench_ttl"] == "`phantom-low` ttl(layer2.1) 0.983 (0.970–0.990) vs full TL 0.830"
    staged = nbformat.read(str(stage / "book" / "executed" / "02_feature_transferability.ipynb"), as_version=4)
    assert "remove-cell" in staged.cells[1].metadata.tags
    assert "remove-cell" not in nbformat.read(str(executed / "02_feature_transferability.ipynb"),
                                              as_version=4).cells[1].metadata.tags
    # a build without these tables: every verdict says it was not run, and no key figure
    other = book.stage_book(root, tmp_path / "stage2", executed, [], book.parse_profile(
        {"notebooks": ["x"]}, "smoke"), tmp_path / "empty")
    assert "| not run |" in (other / "book" / "_generated" / "verdicts.md").read_text()
    assert "{note}" in (other / "book" / "_generated" / "key_figure.md").read_text()


# ------------------------------------------------------------------ chapter conventions

# chapters that follow "Writing a chapter" (ARCHITECTURE.md)
CONVERTED = ["01_data", "02_feature_transferability", "03_svcca", "04_gradcam", "05_truncation_benchmark"]
HIDDEN = {"remove-input", "hide-input", "remove-cell"}


def _glue_table_names(source: str) -> list[str]:
    """The name (second argument) of every ``glue_table(...)`` call: the first string literal after
    a comma at the call's top bracket level (the first argument may hold commas in brackets)."""
    names = []
    for match in re.finditer(r"glue_table\(", source):
        depth, i = 0, match.end()
        while i < len(source):
            ch = source[i]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif ch == "," and depth == 0:
                names.append(re.match(r"\s*f?\"(\w+)\"", source[i + 1:]).group(1))
                break
            i += 1
    return names


def test_glue_table_names_are_read_past_commas_in_the_first_argument():
    src = 'glue_table(df[["a", "b"]], "first", "cap")\nglue_table(x, "second", f"c {y}")'
    assert _glue_table_names(src) == ["first", "second"]


@pytest.mark.parametrize("name", CONVERTED)
def test_chapter_follows_the_writing_conventions(name):
    """Code is hidden except the parameters; every glued figure is placed with a name, alt text
    and a caption; every glued table is placed; the chapter ends on prose."""
    nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        tags = set(cell.metadata.get("tags", []))
        assert "parameters" in tags or tags & HIDDEN, f"{name}: code shown: {cell.source[:60]!r}"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    figures = re.findall(r":::\{glue:figure\} (\w+)\n((?::\w+:.*\n)*)\n(.+)", markdown)
    assert figures, f"{name}: no glued figure placed"
    for key, options, caption in figures:
        assert f":name: fig-{key.replace('_', '-')}" in options and ":alt: " in options, f"{name}: {key}"
        assert caption.strip() and not caption.startswith(":::"), f"{name}: {key} has no caption"
        assert "run_profile" in markdown.split(f"glue:figure}} {key}")[1].split(":::")[0], \
            f"{name}: the caption of {key} does not name the profile"
        assert re.search(rf"glue_figure\(fig, f?\"{key.split('_')[0]}", "\n".join(c.source for c in code)), key
    for key in _glue_table_names("\n".join(c.source for c in code)):
        assert f":::{{glue:md}} {key}\n:format: myst" in markdown, f"{name}: table {key} not placed"
    assert nb.cells[-1].cell_type == "markdown" and "{glue:text}" in nb.cells[-1].source, \
        f"{name}: the chapter should end on an interpretation quoting glued numbers"


# ------------------------------------------------------------------ figures, tables and numbers for the prose


def test_tables_for_the_prose_have_no_index_rounded_numbers_and_a_caption():
    import numpy as np
    import pandas as pd

    from ttl.experiments.figures import glue_value, markdown_table, plain, table_markdown

    df = pd.DataFrame({"model": ["ttl(layer1.1)", "a|b"], "auc": [0.53301344, np.nan], "share": [0.625, 1.0]},
                      index=[7, 9])
    text = markdown_table(df, formats={"share": "{:.0%}"}, headers={"auc": "AUC (map)"})
    lines = text.splitlines()
    assert lines[0] == "| model | AUC (map) | share |" and lines[1] == "|:---|---:|---:|"
    assert lines[2] == "| ttl(layer1.1) | 0.533 | 62% |" and lines[3] == "| a\\|b | – | 100% |"
    assert "7" not in text and "9 " not in text  # no index
    myst = table_markdown(df, "faith_table", "Deletion AUC.")
    assert myst.startswith("~~~{table} Deletion AUC.\n:name: tbl-faith-table\n\n| model") and myst.endswith("~~~\n")
    assert repr(plain(np.float64(0.25))) == "0.25" and repr(plain("quick")) == "quick"
    assert repr(plain(np.int64(3))) == "3" and type(plain(np.int64(3))) is int
    assert glue_value("x", 1.0) is None


def test_glue_figure_saves_at_the_house_dpi_and_glues(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ttl.experiments import figures
    from ttl.experiments.plots import house_style

    glued = {}
    monkeypatch.setattr(figures, "_glue", lambda name, value, display=False: glued.setdefault(name, value))
    house_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    figures.glue_figure(fig, "line", tmp_path)
    assert glued["line"] is fig and (tmp_path / "line.png").stat().st_size > 1000
    width = int.from_bytes((tmp_path / "line.png").read_bytes()[16:20], "big")  # PNG IHDR width
    assert width / figures.FIGURE_DPI <= 7.2  # the column at 100 % zoom
    figures.glue_run("quick", "cpu")
    assert repr(glued["run_profile"]) == "quick" and "CPU cores" in glued["run_hardware"]


def test_house_style_keeps_text_readable_and_wraps_panels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ttl.experiments.plots import MAX_WIDTH_IN, MIN_FONT_PT, gradcam_grid, house_style, panel_grid

    house_style()
    fig, ax = plt.subplots()
    assert fig.get_figwidth() <= MAX_WIDTH_IN
    assert min(t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()) >= MIN_FONT_PT
    plt.close(fig)
    fig, axes = panel_grid(5, max_cols=3)
    assert len(axes) == 5 and fig.get_figwidth() <= MAX_WIDTH_IN
    assert len({round(a.get_position().y0, 3) for a in axes}) == 2  # two rows, not five squeezed panels
    plt.close(fig)
    rng = np.random.default_rng(0)
    images = rng.random((3, 16, 16, 3))
    heat = {"ttl(layer1.1)": rng.random((3, 16, 16)), "full": rng.random((3, 16, 16))}
    fig = gradcam_grid(images, heat, [0, 1, 0], {k: [0, 0, 1] for k in heat}, {k: [0.9, 0.6, 0.7] for k in heat},
                       ["smooth", "spiculated"])
    texts = [a.get_title() for a in fig.axes] + [a.get_xlabel() for a in fig.axes] + [a.get_ylabel() for a in fig.axes]
    assert "true: spiculated" in texts and "smooth 0.60" in texts and "full" in texts
    colorbars = [a for a in fig.axes if a.get_ylabel() == "Grad-CAM weight (0 to 1)"]
    assert len(colorbars) == 1
    assert fig.get_figwidth() <= MAX_WIDTH_IN
    plt.close(fig)


def test_only_the_committed_profile_writes_the_committed_book(tmp_path):
    """A copied or teaching profile goes to _build/<name>/ by default, never over book/executed."""
    committed = book.load_profile(book.COMMITTED_PROFILE)
    assert book.is_committed(committed)
    assert book.default_executed_dir(committed, tmp_path) == tmp_path / "book" / "executed"
    assert book.default_results_dir(committed, tmp_path) == tmp_path / "results" / book.COMMITTED_PROFILE
    copy = tmp_path / f"{book.COMMITTED_PROFILE}.yaml"  # the same name, but not the shipped file
    copy.write_text((book.PROFILES_DIR / f"{book.COMMITTED_PROFILE}.yaml").read_text())
    for profile in (book.load_profile("quick"), book.load_profile(copy)):
        assert not book.is_committed(profile)
        assert book.default_executed_dir(profile, tmp_path) == tmp_path / "_build" / profile.name / "executed"
        assert book.default_results_dir(profile, tmp_path) == tmp_path / "_build" / profile.name / "results"
        assert book.default_build_dir(profile, tmp_path) == tmp_path / "_build" / profile.name


def test_html_only_names_the_chapters_an_earlier_code_executed(setup):
    """``ttl book --html-only`` executes nothing; it says which chapters older code executed."""
    run(setup, {"notebooks": [{"name": "toy", "parameters": {"x": 2}}]})
    assert book.executed_with_other_code(["toy", "absent"], setup["executed"], setup["code"]) == []
    (setup["code"] / "mod.py").write_text("A = 2\n")  # the package changed since the execution
    assert book.executed_with_other_code(["toy", "absent"], setup["executed"], setup["code"]) == ["toy"]
