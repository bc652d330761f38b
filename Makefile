# One command for the book, one for the tests; each creates the environment when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick

.PHONY: help env test book book-smoke clean
help:
	@echo "make book     execute the notebooks (profile: $(PROFILE)) and build the HTML book in _build/html"
	@echo "make test     run the test suite"
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

book: env
	$(VENV)/bin/ttl book --profile $(PROFILE)

# The CI-sized book in _build/smoke (never touches the committed book/executed notebooks).
book-smoke: env
	$(VENV)/bin/ttl book --profile smoke --executed-dir _build/smoke/executed --results-dir _build/smoke/results --build-dir _build/smoke

clean:
	rm -rf _build runs
