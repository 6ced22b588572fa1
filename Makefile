# memjax: `make test` and `make lint` create .venv on first use and install the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check memjax tests configs launch
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry .
	JAX_PLATFORMS=cpu $(PY) -m pytest -n 2 --dist worksteal --durations=15 tests

demo: $(STAMP)
	$(VENV)/bin/memjax compare --out out/demo

lint: $(STAMP)
	$(PY) -m ruff check memjax tests configs launch
	$(PY) -m ruff format --check memjax tests configs launch
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
