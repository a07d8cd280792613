# Two commands: `make run` and `make test`. Each sets up everything it needs:
# a virtualenv in .venv with the project installed, and Prosody from Debian's packages;
# `make test` and `make bench` also ejabberd, since they run against both servers, and PostgreSQL,
# for the store's private cluster.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
RUN_DIR := run
# Where make run's private Prosody listens (127.0.0.1 only): clients, and the component.
C2S_PORT ?= 5222
COMPONENT_PORT ?= 5347
# More handler directories for make run, loaded after the bundled ones: HANDLERS=examples/handlers,
# or several separated by spaces. --handlers replaces the configuration's list, so it names the
# bundled directory first.
HANDLERS ?=

export DEBIAN_FRONTEND := noninteractive

.PHONY: setup run test versions docs lint soak bench bench-peers format clean prosody ejabberd postgresql venv-support

setup: $(INSTALLED) prosody conf/secret.txt

venv-support:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { apt-get update && apt-get install -y python3-venv; }

$(PY): | venv-support
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# prosody-modules brings mod_delegation (XEP-0355) and mod_privilege (XEP-0356), which the
# config enables from Prosody's default plugin directory.
prosody:
	@command -v prosody >/dev/null || apt-get install -y prosody || { apt-get update && apt-get install -y prosody; }
	@test -f /usr/lib/prosody/modules/mod_delegation/mod_delegation.lua || apt-get install -y prosody-modules || { apt-get update && apt-get install -y prosody-modules; }

# The suite starts its own ejabberd with erl and ejabberd's libraries (private_servers/ejabberd.py); it never
# uses the packaged service or its ports.
ejabberd:
	@test -x /usr/sbin/ejabberdctl || apt-get install -y ejabberd || { apt-get update && apt-get install -y ejabberd; }

# The store's tests and benchmarks start their own PostgreSQL cluster with Debian's binaries in
# /usr/lib/postgresql/<version>/bin (private_servers/postgresql.py); they never use the packaged cluster or its port.
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || apt-get install -y postgresql || { apt-get update && apt-get install -y postgresql; }

conf/secret.txt: | $(PY)
	umask 077 && $(PY) -c 'import secrets; print(secrets.token_hex(16))' > $@

run: setup
	$(PY) -m private_servers prosody --dir $(RUN_DIR)/prosody \
	    --c2s-port $(C2S_PORT) --component-port $(COMPONENT_PORT) --secret-file conf/secret.txt \
	    --user alice --password alice -- \
	    $(VENV)/bin/twistd --nodaemon --pidfile= iqresponder --config conf/iqresponder.toml \
	    --server tcp:host=127.0.0.1:port=$(COMPONENT_PORT) \
	    $(if $(strip $(HANDLERS)),--handlers handlers $(addprefix --handlers ,$(HANDLERS)))

# The code checks first (ruff, mypy --strict), then the documentation site, the unit tests on every
# supported Python, and the whole suite, integration tests included, on .venv's Python.
test: setup ejabberd postgresql
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory docs
	$(MAKE) --no-print-directory versions
	$(PY) -m pytest

# The unit tests on every Python version pyproject.toml's classifiers name (noxfile.py), with pyenv's
# interpreters; each version's virtualenv stays in .nox/ for the next run.
versions: $(INSTALLED)
	@$(PY) -c 'import noxfile; noxfile.require_interpreters()'
	$(VENV)/bin/nox

# The long fuzzing run: the suite's stream and address properties with 20,000 examples each, and how many were tried.
soak: setup
	$(PY) -m pytest tests/unit/test_fuzz.py tests/unit/test_addresses.py --hypothesis-profile=soak --hypothesis-show-statistics -q -p no:cacheprovider

# Benchmarks are not tests: they print figures and never fail on speed. See bench/README.md.
bench: setup ejabberd postgresql
	mkdir -p $(RUN_DIR)
	$(PY) bench/run.py --output $(RUN_DIR)/bench-latest.json

# The documentation site in docs/_build/html, warnings as errors (docs/contributing.md). make test builds it too.
docs: $(INSTALLED)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench-peers: setup
	sh bench/peers.sh

# ruff's checks and format, then mypy --strict on component/ and handlers/ (pyproject.toml's [tool.mypy]).
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(RUN_DIR) build dist twisted/plugins/dropin.cache .nox
