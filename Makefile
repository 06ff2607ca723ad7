# The README's two commands. Both create .venv in the repository when missing and install into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# torch is pinned to 2.13.0 (a CPU build) in pyproject's [train] extra; an unpinned torch pulls a CUDA build.

.PHONY: demo test install install-test lint clean chromium test-nonnative

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

install: $(BIN)/python
	$(PIP) install -q -e '.[local,report]'

install-test: $(BIN)/python
	$(PIP) install -q -e '.[local,report,train,test,ray]'

demo: install
	$(BIN)/pasture demo

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Headless Chromium for the HTML report's browser tests: installed when missing and we are root (idempotent);
# otherwise those tests skip, and under CI=true they fail.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi

# Whole test files spread over up to 4 worker processes (pytest-xdist; one per core on CI's 2 cores); the slow
# files start first (tests/conftest.py). PYTEST_PAR= runs them in one process.
PYTEST_PAR ?= -n auto --maxprocesses 4 --dist loadfile

test: install-test chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy --config-file pyproject.toml
	$(BIN)/python -m pytest -q $(PYTEST_PAR)

# The model tests against a llama-cpp-python built without native CPU flags (portable AVX2, no AVX-512), in
# .venv-nonnative: the kernels a plain x86-64 machine runs. Slow (it compiles llama.cpp); not part of `test`.
test-nonnative:
	PY=$(PY) .ci/test-nonnative

clean:
	rm -rf $(VENV) build dist src/*.egg-info
