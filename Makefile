# Two commands on a fresh machine (Python 3.11, Java 17, Maven): `make demo`, `make test`.
# `make demo` leaves the broker and the ledger service (the console) running; `make clean`
# stops both and deletes what they wrote.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: postgres setup go-verifier browser demo test bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test,librdkafka,ducklake]'
	touch $(STAMP)

setup: $(STAMP) go-verifier
	$(BIN)/disclosure-ledger broker fetch

# The independent proof verifier (tests/go_verifier, docs/proofs-go.md): its Go modules come
# through the Go module proxy here, at setup, and the binary goes under .local (never
# committed); tests/unit/test_go_verifier.py runs it. Without Go that test skips, and says
# how to install Go (under CI=true it fails instead).
GO ?= go
GO_VERIFIER := .local/bin/dl-go-verifier
go-verifier: $(GO_VERIFIER)
$(GO_VERIFIER): $(wildcard tests/go_verifier/*.go) tests/go_verifier/go.mod tests/go_verifier/go.sum
	@if command -v $(GO) >/dev/null 2>&1; then \
	  cd tests/go_verifier && $(GO) mod download && $(GO) mod verify >/dev/null \
	  && $(GO) build -trimpath -buildvcs=false -o "$(CURDIR)/$(GO_VERIFIER)" . && echo "built $(GO_VERIFIER)"; \
	else echo "go not installed: the Go proof verifier is not built; its test will skip, or fail under CI=true (install Go 1.26 or later, then: make go-verifier)"; fi

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

# The DuckLake backend's tests start a PostgreSQL server of their own (tests/postgres_server.py)
# from Debian's packages, installed here when missing in a root shell with apt-get;
# otherwise those tests skip and say how to install it (under CI=true they fail instead).
postgres:
	@{ command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "PostgreSQL not installed: the DuckLake tests will skip, or fail under CI=true (apt-get install postgresql)"; }

test: setup browser postgres
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
