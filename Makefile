# One command for the book, one for the tests; each creates the environment when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu

.PHONY: help env test test-fast book book-html book-quick book-smoke clean
help:
	@echo "make book       the committed book (profile: $(PROFILE)): reuses the committed notebooks when nothing changed, builds _build/html"
	@echo "make book-html  the committed book's HTML from book/executed as it is (executes nothing)"
	@echo "make book-quick the 10-minute teaching book (profile quick) in _build/quick; never touches book/executed"
	@echo "make test       run the test suite (CI runs this: bash .ci/run); make test-fast skips the slow tests"
	@echo "make env      create $(VENV) (pip; conda users: conda env create -f environment.yml)"

$(VENV)/.installed: requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need Python 3.11 ($(PYTHON)); set PYTHON=..." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

env: $(VENV)/.installed

test: env
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The fast lane: every test but those marked slow (a few minutes); CI runs the full suite.
test-fast: env
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

book: env
	$(VENV)/bin/ttl book --profile $(PROFILE)

# The committed chapters as they are, executing nothing (they show the run they record, whatever code is checked out).
book-html: env
	$(VENV)/bin/ttl book --profile $(PROFILE) --html-only

# The teaching book in _build/quick (its own executed notebooks and results; the committed book is untouched).
book-quick: env
	$(VENV)/bin/ttl book --profile quick --executed-dir _build/quick/executed --results-dir _build/quick/results --build-dir _build/quick

# The CI-sized book in _build/smoke (never touches the committed book/executed notebooks).
book-smoke: env
	$(VENV)/bin/ttl book --profile smoke --executed-dir _build/smoke/executed --results-dir _build/smoke/results --build-dir _build/smoke

clean:
	rm -rf _build runs
