"""Build the whole book with the smoke profile (once per module) and check the HTML it produces."""

from __future__ import annotations

import html as html_lib
import json
import re
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from ttl import book
from ttl.cli import main

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``ttl book --profile smoke`` into temporary folders (the repository's book is untouched)."""
    tmp = tmp_path_factory.mktemp("smoke_book")
    committed = sorted((REPO / "book" / "executed").glob("*.ipynb"))
    before = {p: p.read_bytes() for p in committed}
    code = main(["book", "--profile", "smoke", "--executed-dir", str(tmp / "executed"),
                 "--results-dir", str(tmp / "results"), "--build-dir", str(tmp / "build"),
                 "--runs-dir", str(tmp / "runs"), "--no-progress"])
    assert code == 0
    assert {p: p.read_bytes() for p in committed} == before, "the committed executed notebooks changed"
    assert list((tmp / "runs").rglob("result.json")), "the smoke book's trainings did not go to --runs-dir"
    html = tmp / "build" / "_build" / "html"
    assert (html / "index.html").is_file()
    return {"tmp": tmp, "html": html, "executed": tmp / "executed", "results": tmp / "results"}


class _Page(HTMLParser):
    """Collects ids, links, images and the text of notebook output blocks of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[str] = []
        self.title = ""
        self._in_title = False
        self._output_depth = 0
        self.output_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag == "a" and a.get("href") is not None:
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "title":
            self._in_title = True
        classes = (a.get("class") or "").split()
        if self._output_depth:
            self._output_depth += 1
        elif tag == "div" and "cell_output" in classes:
            self._output_depth = 1

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if self._output_depth:
            self._output_depth -= 1

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._output_depth:
            self.output_text.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html") if "_static" not in p.parts)


def expected_docs() -> list[str]:
    profile = book.load_profile("smoke")
    toc = book.book_toc(yaml.safe_load((REPO / "_toc.yml").read_text()), profile.names())
    docs = [toc["root"]]
    for part in toc["parts"]:
        docs += [c["file"] for c in part["chapters"]]
    return docs


def test_every_toc_chapter_has_a_page(built):
    docs = expected_docs()
    assert "book/executed/01_data" in docs and "book/discussion" in docs
    for doc in docs:
        page = built["html"] / f"{doc}.html"
        assert page.is_file() and page.stat().st_size > 1000, f"no page for {doc}"
    # the sidebar of the root page links every chapter
    root = parse(built["html"] / f"{docs[0]}.html")
    linked = {urlsplit(h).path for h in root.links}
    for doc in docs[1:]:
        assert os.path.relpath(f"{doc}.html", str(Path(docs[0]).parent)) in linked, f"{doc} not in the sidebar"


def test_images_exist_and_notebooks_have_figures(built):
    html = built["html"]
    notebook_images = 0
    for path in pages(html):
        for src in parse(path).images:
            parts = urlsplit(src)
            if parts.scheme in ("http", "https", "data"):
                continue
            target = (path.parent / unquote(parts.path)).resolve()
            assert target.is_file() and target.stat().st_size > 0, f"{path.name}: image {src} missing or empty"
            if "executed" in path.parts and "_images" in target.parts:
                notebook_images += 1
    assert notebook_images >= 2, "the data chapter should show its figures"


def test_no_error_output_in_the_executed_notebooks(built):
    names = book.load_profile("smoke").names()
    for name in names:
        nb = json.loads((built["executed"] / f"{name}.ipynb").read_text())
        for i, cell in enumerate(nb["cells"]):
            for out in cell.get("outputs", []):
                assert out["output_type"] != "error", f"{name} cell {i}: {out.get('ename')}: {out.get('evalue')}"
                if out["output_type"] == "stream" and out.get("name") == "stderr":
                    text = "".join(out["text"])
                    assert "Traceback" not in text and "Error" not in text, f"{name} cell {i} stderr: {text[:300]}"
        assert nb["metadata"]["ttl_book"]["profile"] == "smoke"
        assert (built["results"] / name).is_dir()
    record = json.loads((built["results"] / "book_run.json").read_text())
    assert [n["name"] for n in record["notebooks"]] == names
    assert {n["status"] for n in record["notebooks"]} == {"executed"}
    assert record["book_build"]["seconds"] > 0 and record["provenance"]["git"]
    for path in pages(built["html"]):
        text = " ".join(parse(path).output_text)
        assert "Traceback" not in text, f"{path}: a traceback in a notebook output"


def test_no_broken_internal_links(built):
    html = built["html"]
    parsed = {p.resolve(): parse(p) for p in pages(html)}
    checked = 0
    for path, page in parsed.items():
        for href in page.links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("mailto:", "javascript:")) or href == "#":
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            assert target.exists(), f"{path.relative_to(html.resolve())}: broken link {href}"
            if parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                assert parts.fragment in ids, f"{path.relative_to(html.resolve())}: missing anchor {href}"
            checked += 1
    assert checked > 50


def chromium() -> str | None:
    for candidate in (os.environ.get("TTL_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def dump_dom(exe: str, url: str, profile_dir: Path) -> str:
    proc = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--virtual-time-budget=5000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_index_renders_in_headless_chromium(built, tmp_path):
    exe = chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium not found: CI must install it (bash .ci/setup-chromium.sh)")
        pytest.skip("chromium not installed (bash .ci/setup-chromium.sh installs Debian's chromium)")
    title = "TTL Study: Rethinking Transfer Learning for Medical Image Classification"
    # index.html redirects to the root chapter; the virtual time budget lets the redirect happen
    dom = dump_dom(exe, (built["html"] / "index.html").as_uri(), tmp_path / "profile1")
    page = _Page()
    page.feed(dom)
    assert title in page.title
    assert any(h.endswith("executed/01_data.html") for h in page.links), "no link to the data chapter"
    dom = dump_dom(exe, (built["html"] / "book" / "executed" / "01_data.html").as_uri(), tmp_path / "profile2")
    page = _Page()
    page.feed(dom)
    assert "The phantom datasets" in page.title
    figures = [src for src in page.images if "_images/" in src and src.endswith(".png")]
    assert figures, "no notebook figure in the rendered data chapter"


# ------------------------------------------------------------------ reading quality (issue 14)

#: chapters not yet rewritten to the conventions of ARCHITECTURE.md "Writing a chapter": the
#: caption, glue and size checks skip them (the whole-book checks still apply). Empty it as they
#: are converted.
PENDING: set[str] = set()
AUDITED = ["book/intro", "book/sources", "book/methods", "book/discussion"] + [
    f"book/executed/{n}" for n in ("01_data", "02_feature_transferability", "03_svcca", "04_gradcam",
                                   "05_truncation_benchmark")]
FIGURE_DPI = 150
AUDIT_JS = r"""
<script>
window.addEventListener('load', function () {
  function audit() {
    var col = document.querySelector('article.bd-article') || document.querySelector('main');
    var box = col.getBoundingClientRect();
    var out = {column: box.width, mathjax: document.querySelectorAll('mjx-container').length,
               math: document.querySelectorAll('.math').length, figures: [], overflow: [], loose: []};
    document.querySelectorAll('figure').forEach(function (f) {
      var cap = f.querySelector('figcaption'), num = cap && cap.querySelector('.caption-number');
      var img = f.querySelector('img');
      out.figures.push({id: f.id || (f.querySelector('[id]') || {}).id || '', caption: cap ? cap.innerText : '',
                        number: num ? num.innerText : '', alt: img ? img.getAttribute('alt') || '' : '',
                        natural: img ? img.naturalWidth : 0, shown: img ? img.getBoundingClientRect().width : 0});
    });
    document.querySelectorAll('figure, table, img, .cell_output, .math').forEach(function (el) {
      var r = el.getBoundingClientRect();
      if (r.width && (r.right > box.right + 2 || r.left < box.left - 2))
        out.overflow.push(el.tagName + ' ' + Math.round(r.width) + ' px');
    });
    document.querySelectorAll('table').forEach(function (t) {
      var p = t.parentElement;
      if (t.scrollWidth > box.width + 2 || (p && p.scrollWidth > p.clientWidth + 2))
        out.overflow.push('TABLE scrolls: ' + t.scrollWidth + ' px in ' + Math.round(box.width));
    });
    document.querySelectorAll('.cell_output img').forEach(function (img) {
      if (!img.closest('figure')) out.loose.push(img.getAttribute('alt') || img.src.slice(-40));
    });
    var text = col.cloneNode(true);
    text.querySelectorAll('pre, code, script, .highlight').forEach(function (e) { e.remove(); });
    out.raw_math = /\\\(|\\\[|\$\$/.test(text.textContent);
    var pre = document.createElement('pre');
    pre.id = 'ttl-audit';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) MathJax.startup.promise.then(audit);
  else audit();
});
</script>
"""
OFFLINE_FLAGS = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                 "--window-size=1280,1000"]


def audit_page(exe: str, page: Path, profile_dir: Path) -> dict:
    """Render ``page`` offline in headless Chromium and return what the audit script measured."""
    probe = page.with_name(page.stem + ".audit.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", AUDIT_JS + "</body>"), encoding="utf-8")
    try:
        proc = subprocess.run([exe, *CHROMIUM_FLAGS, *OFFLINE_FLAGS, f"--user-data-dir={profile_dir}",
                               "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
                              capture_output=True, text=True, timeout=180)
    finally:
        probe.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="ttl-audit"[^>]*>(.*?)</pre>', proc.stdout, re.S)
    assert found, f"{page.name}: the audit script did not run"
    return json.loads(html_lib.unescape(found.group(1)))


@pytest.fixture(scope="module")
def audits(built, tmp_path_factory):
    exe = chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium not found: CI must install it (bash .ci/setup-chromium.sh)")
        pytest.skip("chromium not installed (bash .ci/setup-chromium.sh installs Debian's chromium)")
    tmp = tmp_path_factory.mktemp("chromium")
    return {doc: audit_page(exe, built["html"] / f"{doc}.html", tmp / doc.replace("/", "_")) for doc in AUDITED}


def test_formulas_render_offline_with_the_vendored_mathjax(built, audits):
    html = built["html"]
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    for path in pages(html):
        text = path.read_text(encoding="utf-8")
        assert "cdn.jsdelivr.net" not in text and "mathjax@" not in text, f"{path.name}: MathJax from a CDN"
    methods = audits["book/methods"]
    assert methods["math"] > 0 and methods["mathjax"] >= methods["math"], methods
    for doc, audit in audits.items():
        assert not audit["raw_math"], f"{doc}: raw LaTeX left on the page"


def test_every_figure_has_a_number_a_caption_and_alt_text(audits):
    for doc, audit in audits.items():
        for fig in audit["figures"]:
            assert fig["number"].startswith("Fig. "), f"{doc}: figure {fig['id']} has no number"
            assert len(fig["caption"]) > len(fig["number"]) + 20, f"{doc}: figure {fig['id']} has no caption"
            assert fig["alt"] and len(fig["alt"]) > 15 and not re.fullmatch(r"[0-9a-f]{16,}", fig["alt"]), \
                f"{doc}: figure {fig['id']} alt text {fig['alt']!r}"
        assert not audit["loose"], f"{doc}: notebook images outside a figure: {audit['loose']}"
    for doc, n in (("book/executed/01_data", 2), ("book/executed/04_gradcam", 2), ("book/sources", 1),
                   ("book/intro", 1)):
        assert len(audits[doc]["figures"]) >= n, f"{doc}: expected {n} figures"


def test_nothing_overflows_the_column_and_figures_are_not_shrunk(audits):
    for doc, audit in audits.items():
        assert audit["column"] > 500, f"{doc}: no text column found ({audit['column']} px)"
        assert not audit["overflow"], f"{doc}: wider than the column: {audit['overflow']}"
        if doc.startswith("book/executed/") or doc == "book/sources":
            for fig in audit["figures"]:
                physical = fig["natural"] / FIGURE_DPI * 96  # CSS px at 100 % zoom
                assert fig["shown"] >= 0.9 * physical, \
                    f"{doc}: {fig['id']} shown at {fig['shown']:.0f} px, drawn for {physical:.0f} px: text shrinks"


def test_no_warnings_stderr_or_local_paths_on_the_pages(built):
    local = [str(REPO), "site-packages", ".venv/", "/home/", "/tmp/"]
    for path in pages(built["html"]):
        page = parse(path)
        text = " ".join(page.output_text)
        for bad in ["Warning", "WARNING", "IProgress", "it/s]", "Traceback", *local]:
            assert bad not in text, f"{path.name}: {bad!r} in a notebook output"
        raw = path.read_text(encoding="utf-8")
        assert "output stderr" not in raw, f"{path.name}: a stderr output is rendered"
        for bad in local[:3]:
            assert bad not in raw, f"{path.name}: local path {bad!r}"


def test_parameters_cell_shows_the_values_used_once(built):
    for name in book.load_profile("smoke").names():
        raw = (built["html"] / "book" / "executed" / f"{name}.html").read_text(encoding="utf-8")
        assert raw.count("tag_injected-parameters") == 1, f"{name}: injected parameters not shown once"
        assert "tag_parameters" not in raw, f"{name}: the notebook's default parameters are shown too"


def test_landing_page_states_the_run_the_verdicts_and_the_links(built):
    raw = (built["html"] / "book" / "intro.html").read_text(encoding="utf-8")
    assert "Profile <strong>smoke</strong>" in raw and "CPU cores" in raw
    assert 'id="tbl-verdicts"' in raw and "Table 1" in raw
    for link in ("https://arxiv.org/abs/2106.05152", "https://github.com/sun-umn/TTL"):
        assert link in raw
    sources = (built["html"] / "book" / "sources.html").read_text(encoding="utf-8")
    assert 'id="fig-fractals"' in sources and "resnet18_fractal.pt" in sources
