# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed here from the project's own files, so a fresh clone on a fresh machine works.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install demo test bench sandbox clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/oms demo

test: $(INSTALLED)
	$(BIN)/python -m pytest

bench: $(INSTALLED)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/allocate.py
	$(BIN)/python benchmarks/ship.py
	$(BIN)/python benchmarks/after_sales.py
	$(BIN)/python benchmarks/identity.py

sandbox: $(INSTALLED)
	$(BIN)/oms sandbox

clean:
	rm -rf var .pytest_cache
