# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SEEDS ?= seeds
WAREHOUSE ?= warehouse

.PHONY: run test lint format bench fuzz clean

$(BIN)/authorgraph: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/authorgraph
	$(BIN)/authorgraph run --seeds $(SEEDS) --warehouse $(WAREHOUSE)

lint: $(BIN)/authorgraph
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/authorgraph
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest -n 4 --dist loadfile

# Benchmarks (issue 10's targets): never part of `make test`. BENCH_ARGS="--large" adds 200k pages,
# BENCH_ARGS="--pages 5000" picks sizes. Corpora are cached under bench-results/corpus/.
BENCH_ARGS ?=
bench: $(BIN)/authorgraph
	$(BIN)/python -m tests.benchmarks.bench $(BENCH_ARGS)

# Parser fuzzing (issue 9): the generators of tests/test_fuzz.py at 100k+ cases; not part of
# `make test`. FUZZ_ARGS="--cases 1000000 --seed 1" for a longer or different run.
FUZZ_ARGS ?= --cases 100000
fuzz: $(BIN)/authorgraph
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
