# Two set-up commands for a fresh machine: `make demo` and `make test`. Both create .venv themselves.
# `make soak` runs the week-long fault soak (docs/reliability.md; about 90 minutes, needs root for the
# disk-full fault): SOAK_SPEED=X and SOAK_DURATION=SECONDS override the scenario's speed and length.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# a test peer (openSpex); see pyproject.toml for why it goes in alone, without its dependencies
OPENSPEX := open-spex>=1.0.7,<1.1
FUZZ_STAMP := $(VENV)/.installed-fuzz

SOAK_SPEED ?=
SOAK_DURATION ?=

.PHONY: demo test soak bench fuzz lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps '$(OPENSPEX)'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ims hil run --out demo-out

soak: $(STAMP)
	$(BIN)/ims hil run hil/scenarios/soak-week.toml --out soak-out \
		$(if $(SOAK_SPEED),--speed $(SOAK_SPEED)) $(if $(SOAK_DURATION),--duration $(SOAK_DURATION))

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 3 --durations=12  # three workers on two cores: the real-time tests mostly wait

# At least 10 million inputs over every fuzz target, two targets at a time (about an hour on 2 idle cores,
# estimated); not part of `make test`.
$(FUZZ_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	$(BIN)/python -m fuzz --total 10000000 --jobs 2 --out fuzz-out

bench: $(STAMP)
	$(BIN)/python -m bench --out bench-results

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf demo-out soak-out rn-day-out bench-results fuzz-out .pytest_cache .mypy_cache
