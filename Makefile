# Each target sets up .venv itself on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo demo-auth test lint typecheck unit package-check bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo-auth: $(STAMP)  ## the login demo
	$(PY) -m demo_auth $(ARGS)

demo: $(STAMP)  ## the 1.1.1 reset demo (python -m demo_reset)
	$(PY) -m demo_reset $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check aiohttp_session_ws demo_auth demo_reset

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest $(ARGS)

package-check: $(STAMP)  ## build the wheel and sdist, check what they contain
	rm -rf dist
	$(PY) -m build -q --outdir dist .
	$(PY) -m twine check --strict dist/*
	$(PY) -m check_wheel_contents --toplevel aiohttp_session_ws dist/*.whl
	$(PY) .ci/check_dist.py dist

test: lint typecheck unit package-check  ## everything CI runs

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

bench-quick: $(STAMP)
	$(PY) -m bench --quick $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
