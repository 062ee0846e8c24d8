# TradePulse Live. `make run` and `make test` are all a newcomer types.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CONFIG  ?= deploy/config/demo.toml

.PHONY: run test lint bench chaos venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,chaos]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python supervisor.py run --config $(CONFIG) --demo

# Enforced, not configured: lint and types run before the tests, and fail the build.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m tests.bench

chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --duration-s $${DURATION_S:-600}

clean:
	rm -rf $(VENV) var
