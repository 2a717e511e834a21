# Set-up is idempotent: .venv is created once, the project re-installed only when pyproject changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mmfactor bench quick --out runs/demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# Headless Chromium + chromedriver for tests/bench/test_report_browser.py (Debian packages).
# Installed once when absent; never fails: without apt-get, root/sudo or network the browser
# test is skipped with its reason.
SUDO := $(shell [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || echo sudo -n)
browser:
	@command -v chromedriver >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 \
	  && $(SUDO) apt-get update -qq >/dev/null 2>&1 \
	  && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
	  || echo "browser: could not install chromium/chromedriver; the browser test will be skipped"; \
	}

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools examples
	$(BIN)/ruff format --check src tests benchmarks tools examples
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
