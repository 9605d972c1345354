# soxs_mdark: `make run` reduces example darks, `make test` lints and runs the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE := example

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dask]'
	$(BIN)/python -c 'from soxs_lib.core.stack import warm_up; warm_up()'  # compile the kernel once
	$(BIN)/python -m compileall -q soxs_lib recipes workflows  # bytecode even where PYTHONDONTWRITEBYTECODE is set
	touch $(STAMP)

run: install
	$(BIN)/soxs simulate --arm NIR -n 5 -o $(EXAMPLE)/raw
	$(BIN)/soxs mdark $(EXAMPLE)/raw/mdark.sof -o $(EXAMPLE) -x

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python benchmarks/bench_mdark.py --md

clean:
	rm -rf $(VENV) $(EXAMPLE) *.egg-info
