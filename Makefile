# soxs_mdark: `make run` reduces example darks, `make test` lints and runs the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE := example

.PHONY: install run test docs bench clean

install: $(STAMP)

# the editable install compiles the kernel (soxs_lib/core/*.c) in place
$(STAMP): setup.cfg setup.py pyproject.toml $(wildcard soxs_lib/core/*.c)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dask,docs]'
	$(BIN)/python -m compileall -q soxs_lib recipes workflows  # bytecode even where PYTHONDONTWRITEBYTECODE is set
	touch $(STAMP)

run: install
	$(BIN)/soxs simulate --arm NIR -n 5 -o $(EXAMPLE)/raw
	$(BIN)/soxs mdark $(EXAMPLE)/raw/mdark.sof -o $(EXAMPLE) -x

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests

docs: install
	$(BIN)/python -m sphinx -W -q -b html docs docs/_build/html
	@echo "the documentation: docs/_build/html/index.html"

bench: install
	$(BIN)/python benchmarks/bench_mdark.py --md docs/benchmarks/results.md

clean:
	rm -rf $(VENV) $(EXAMPLE) *.egg-info docs/_build
