# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: install install-test demo test test-fast test-other-cpu lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What `emergence run` and `summary` need, and nothing else.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

# The test tools, the batch-cluster client and the object-storage client and server.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test,cluster,s3]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/emergence run workflows/quickstart.toml
	$(BIN)/emergence summary data/quickstart.zarr

lint: install-test
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/mypy pipeline

test: lint
	$(BIN)/python -m pytest -q

# No test here starts a process (tests/conftest.py fails one that does).
test-fast: install-test
	$(BIN)/python -m pytest -q -m "not slow"

# The whole suite on another CPU's code paths, as on a machine without AVX-512: numpy without
# its AVX-512 kernels, OpenBLAS with its Haswell ones (`make test` reruns the numeric tests so,
# in tests/test_other_cpu.py).
test-other-cpu: install-test
	NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL" OPENBLAS_CORETYPE=Haswell $(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) data/*.zarr
