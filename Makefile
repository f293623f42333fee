# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,cluster,s3]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/emergence run workflows/quickstart.toml
	$(BIN)/emergence summary data/quickstart.zarr

test: install
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) data/*.zarr
