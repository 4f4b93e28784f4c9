# Two commands on a fresh machine (Python 3.11, Java 17, Maven): `make demo`, `make test`.
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

clean:
	-$(BIN)/disclosure-ledger broker stop
	rm -rf .local out
