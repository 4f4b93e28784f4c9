# Two commands on a fresh machine (Python 3.11, Java 17, Maven): `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/disclosure-ledger broker fetch

demo: setup
	$(BIN)/disclosure-ledger demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/disclosure-ledger broker start
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m bench

clean:
	-$(BIN)/disclosure-ledger broker stop
	rm -rf .local out
