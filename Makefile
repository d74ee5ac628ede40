# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SEEDS ?= seeds
WAREHOUSE ?= warehouse

.PHONY: run test lint format bench clean

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
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
