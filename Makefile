# TradePulse Live. `make run` and `make test` are all a newcomer types.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CONFIG  ?= deploy/config/demo.toml
FUZZ_S  ?= 60
FUZZ_TARGETS := envelope fix_frames fix_session config

.PHONY: run test lint bench bench-quick chaos fuzz venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,chaos]'
	touch $(STAMP)

# The demo's crypto exchange (binance-local) is the local simulator: these are its demo keys,
# not secrets; set the variables yourself to use your own.
run: $(STAMP)
	TP_DEMO_BINANCE_KEY=$${TP_DEMO_BINANCE_KEY:-demoKeyBinanceLocalNotASecret0000000000000000000000000000000000} \
	TP_DEMO_BINANCE_SECRET=$${TP_DEMO_BINANCE_SECRET:-demoSecretBinanceLocalNotASecret000000000000000000000000000000} \
	$(BIN)/python supervisor.py run --config $(CONFIG) --demo

# Enforced, not configured: lint and types run before the tests, and fail the build.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Three workers (pytest-xdist) on two cores: the tests mostly wait on the processes they
# start (two workers kept the cores ~60 % busy: 10:35 wall for 13 min of CPU; three, 8:04).
# Work stealing: a worker that runs out takes tests from another's queue (the default hands
# them out ahead and left one worker idle while the other ran the long tail: 11:04 -> 8:39)
TEST_WORKERS ?= 3
test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

bench: $(STAMP)
	$(BIN)/python -m tests.bench

# The order path alone in under two minutes: 1/2/4/8 clients, orders/s, latency, CPU per role.
bench-quick: $(STAMP)
	$(BIN)/python -m tests.bench.quick

chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --duration-s $${DURATION_S:-600}

# Coverage-guided fuzzing (atheris, the `fuzz` extra): FUZZ_S seconds per target, its log in
# var/fuzz/<target>.log; a crash, hang or OOM input is written to tests/fuzz/corpus/<target>/.
fuzz: $(STAMP)
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install --quiet -e '.[fuzz]'
	@mkdir -p var/fuzz; status=0; for t in $(FUZZ_TARGETS); do \
		if $(BIN)/python -m tests.fuzz $$t --seconds $(FUZZ_S) > var/fuzz/$$t.log 2>&1; \
		then echo "fuzz $$t: $$(tail -1 var/fuzz/$$t.log)"; \
		else status=1; echo "fuzz $$t: FOUND an input, see var/fuzz/$$t.log"; \
			grep -E "Test unit written|Uncaught|Error" var/fuzz/$$t.log | head -5; fi; \
	done; exit $$status

clean:
	rm -rf $(VENV) var
