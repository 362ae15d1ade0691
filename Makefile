# Two entry points: `make run` (the product; a local demo when no tokens are set) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench chaos abuse clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/supportbot run

test: $(STAMP)
	scripts/ensure-chromium
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.nlu
	$(BIN)/python -m bench.pipeline

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

abuse: $(STAMP)
	$(BIN)/python -m bench.abuse

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
