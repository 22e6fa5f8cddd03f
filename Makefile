# Each target sets up .venv itself on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo demo-auth test lint typecheck unit package-check test-min-aiohttp bench bench-quick clean

# The oldest aiohttp we support, in a second venv, for the tests of what touches
# aiohttp's websocket behaviour (pytest-aiohttp 1.1 needs a newer aiohttp).
MIN_VENV ?= .venv-min-aiohttp
MIN_PY := $(MIN_VENV)/bin/python
MIN_STAMP := $(MIN_VENV)/.installed-stamp
MIN_PINS := aiohttp==3.10.4 pytest-aiohttp==1.0.5
MIN_TESTS := tests/test_websocket.py tests/test_close_handshake.py \
	tests/test_close_handshake_browser.py tests/test_core.py tests/test_core_shutdown.py \
	tests/test_core_units.py tests/test_demo.py

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(MIN_STAMP): pyproject.toml
	test -x $(MIN_PY) || python3 -m venv $(MIN_VENV)
	$(MIN_PY) -m pip install -q --upgrade pip
	$(MIN_PY) -m pip install -q -e . $(MIN_PINS) 'pytest>=8' 'pytest-timeout>=2.3' \
		'websockets>=13' 'playwright>=1.45'
	touch $(MIN_STAMP)

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

test-min-aiohttp: $(MIN_STAMP)  ## core and closing-handshake tests on aiohttp 3.10.4
	$(MIN_PY) -c 'import aiohttp; assert aiohttp.__version__ == "3.10.4", aiohttp.__version__'
	$(MIN_PY) -m pytest $(MIN_TESTS) $(ARGS)

test: lint typecheck unit package-check test-min-aiohttp  ## everything CI runs

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

bench-quick: $(STAMP)
	$(PY) -m bench --quick $(ARGS)

clean:
	rm -rf $(VENV) $(MIN_VENV) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
