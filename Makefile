# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SEEDS ?= seeds
WAREHOUSE ?= warehouse

.PHONY: run test lint typecheck format duckdb-cli bench fuzz clean

# uv installs the packages: 19 s against pip's 40 s here, each from a cold cache, with the same
# versions. It comes from PyPI through the venv's own pip, so Python, pip and make are still all
# a machine needs. uv reads no pip.conf: if it cannot install (say, only a private index
# configured for pip is reachable), pip does it. --compile-bytecode, as pip does by default:
# where PYTHONDONTWRITEBYTECODE is set (this machine), a venv without .pyc files compiles every
# module in every process, and `make test` took 5:54 instead of 5:18.
# $(call install,PYTHON,REQUIREMENTS)
install = $(BIN)/uv pip install --quiet --compile-bytecode --python $(1) $(2) \
	|| $(BIN)/python -m pip --python $(1) install --quiet --disable-pip-version-check $(2)

$(BIN)/authorgraph: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(call install,$(BIN)/python,-e '.[dev]')
	touch $@

run: $(BIN)/authorgraph
	$(BIN)/authorgraph run --seeds $(SEEDS) --warehouse $(WAREHOUSE)

lint: $(BIN)/authorgraph
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy sees the package as installed (authorgraph.transforms, ...): it cannot follow setuptools'
# editable finder, so a link per folder under .cache/mypy-path/authorgraph/ stands in for it
# (pyproject.toml's mypy_path). What is checked, and how strictly: [tool.mypy] there.
TYPE_ROOT := .cache/mypy-path/authorgraph
typecheck: $(BIN)/authorgraph
	mkdir -p $(TYPE_ROOT)
	for d in transforms expectations pipelines; do ln -sfn ../../../$$d $(TYPE_ROOT)/$$d; done
	$(BIN)/mypy

format: $(BIN)/authorgraph
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Four xdist workers taking tests one by one (worksteal: a file of slow tests no longer bounds the
# run); the Prefect test server and the seeds warehouse are built once and shared
# (tests/conftest.py), so spreading a file's tests over workers costs nothing extra. mypy (18 s
# of one core on a fresh clone) runs beside pytest instead of before it; its output follows
# pytest's, and either failing fails `make test`.
test: lint duckdb-cli
	@mkdir -p $(CLI_CACHE)
	@$(MAKE) --no-print-directory typecheck > $(CLI_CACHE)/typecheck.log 2>&1 & types=$$!; \
	$(BIN)/python -m pytest -n 4 --dist worksteal; tests=$$?; \
	wait $$types; typed=$$?; echo "--- make typecheck:"; cat $(CLI_CACHE)/typecheck.log; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

# The DuckDB 1.x CLIs (PyPI `duckdb-cli`) that tests/test_bi.py opens the warehouse with: the
# tests install nothing and reach no network. One venv per version under .cache/, never .venv:
# each installs a `duckdb` executable, and .venv keeps the DuckDB 2.0 Python package. 1.4 is the
# line the file is written for (storage_compatibility_version), 1.5.6 the newest 1.x. Keep the
# list equal to DUCKDB_CLI_VERSIONS in tests/test_bi.py (a test checks).
DUCKDB_CLI_VERSIONS := 1.4.4 1.5.6
CLI_CACHE := .cache
duckdb-cli: $(foreach v,$(DUCKDB_CLI_VERSIONS),$(CLI_CACHE)/duckdb-cli-$(v)/bin/duckdb)

# The 1.4.4 wheel installs its binary without the executable bit: chmod. `--version` proves the
# binary runs; a failed install leaves no target behind, so the next make tries again.
$(CLI_CACHE)/duckdb-cli-%/bin/duckdb: | $(BIN)/authorgraph
	rm -rf $(CLI_CACHE)/duckdb-cli-$*
	$(PYTHON) -m venv --without-pip $(CLI_CACHE)/duckdb-cli-$*
	$(call install,$(CLI_CACHE)/duckdb-cli-$*/bin/python,'duckdb-cli==$*')
	chmod 755 $@ && $@ --version || { rm -f $@; exit 1; }

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
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache $(CLI_CACHE)/duckdb-cli-* $(CLI_CACHE)/mypy-path
