# Apsara: `make run` to start, `make test` to run the whole suite. Everything installs itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The browser tests drive Debian's Chromium (scripts/install-system-packages.sh); Playwright never downloads one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test bench lint typecheck system-packages node-packages sim clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

PORT ?= 8000

## run: install, migrate and serve on http://127.0.0.1:$(PORT) (`make run PORT=8001`; simulated Gemini unless credentials are set)
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

## test: install what the tests need (incl. Debian's Chromium and nginx, and axe-core from npm) and run the whole suite
test: $(STAMP) system-packages node-packages
	$(PY) -m pytest $(PYTEST_ARGS)

system-packages:
	@bash scripts/install-system-packages.sh

# The accessibility audit injects axe-core (package.json, pinned by package-lock.json) into the pages; never a CDN.
# Reinstalled only when the lock file changes.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

node-packages: node_modules/.package-lock.json

## bench: the live-bridge benchmark against its baseline (see bench/README.md)
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

## sim: run the Gemini simulator stand-alone on https://127.0.0.1:8765
sim: $(STAMP)
	$(PY) -m gemini_sim --host 127.0.0.1 --port 8765 --state-dir .sim

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache media .sim db.sqlite3
