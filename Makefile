# Two commands on a fresh machine (Python 3.11, Java 17, Maven): `make demo`, `make test`.
# `make demo` leaves the broker and the ledger service (the console) running; `make clean`
# stops both and deletes what they wrote.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/disclosure-ledger broker fetch

demo: setup
	$(BIN)/disclosure-ledger demo

# The HTML reports are checked in Debian's headless Chromium, whose layout is measured
# through its WebDriver (chromedriver, driven by Selenium); both are installed here when
# missing and this is a root shell with apt-get (as on this project's machines and CI),
# otherwise those tests skip and say how to install them (under CI=true they fail instead).
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "chromium or chromium-driver not installed: the browser tests will skip, or fail under CI=true (apt-get install chromium chromium-driver)"; }

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/disclosure-ledger schemas check
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m bench

# The service `make demo` leaves running is stopped first (SIGTERM: the batch in hand
# commits), then the broker.
clean:
	-$(BIN)/disclosure-ledger service stop --ledger "$${DISCLOSURE_LEDGER_STATE_DIR:-.local}/demo/ledger.duckdb"
	-$(BIN)/disclosure-ledger broker stop
	rm -rf .local out
