# Two commands on a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PIP := $(BIN)/pip --quiet --disable-pip-version-check
# Both locks are complete (every dependency pinned and hashed), so pip resolves nothing itself.
COMPILE := $(BIN)/pip-compile --quiet --allow-unsafe --generate-hashes --strip-extras --no-emit-index-url \
	--no-emit-find-links

PYTHON_CODE := pipeline sandbox tests dbt_project/sqlfluff_libs

.PHONY: install demo live test test-fast check browser connectors test-pg-instance ui lock validate clean

$(INSTALLED): requirements-dev.lock pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements-dev.lock
	$(PIP) install --no-deps -e . -e ./sandbox
	touch $@

install: $(INSTALLED)

demo: install  ## run the demo end to end: sandbox + DuckDB + SQLite Dagster storage
	$(BIN)/handoff demo

live: install  ## watch the event loop: a living company, intake, sensors, SLA clocks and a notice inbox
	$(BIN)/handoff live

check: install  ## lint, format check, type check and SQL lint: they fail the build as tests do
	$(BIN)/ruff check $(PYTHON_CODE)
	$(BIN)/ruff format --check $(PYTHON_CODE)
	$(BIN)/mypy
	$(BIN)/sqlfluff lint --processes 2 dbt_project/models dbt_project/macros dbt_project/tests

CHROMIUM := /usr/bin/chromium
# apt-get needs root: through sudo unless make runs as root already (as CI does).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser:  ## Debian's chromium, which the browser tests drive, installed when missing
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

test: check browser connectors  ## the checks, then the whole test suite
	$(BIN)/pytest

# The open-source connectors the sandbox is tested against (tests/e2e/test_connector_*.py), each in an
# environment of its own made from its lock, remade when the lock changes.
CONNECTORS := .venv-connectors
CONNECTOR_ENVS := $(CONNECTORS)/tap-marketo/.installed $(CONNECTORS)/airbyte-source-hubspot/.installed

$(CONNECTORS)/%/.installed: connectors/%/requirements.lock
	rm -rf $(@D)
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/pip --quiet --disable-pip-version-check install --require-hashes --no-deps -r $<
	touch $@

connectors: $(CONNECTOR_ENVS)  ## the connectors' environments, made when missing or older than their locks

test-fast: check  ## the checks and the unit tests: no network, no files, no processes
	$(BIN)/pytest -m unit -n 0

PG_INSTANCE_DB ?= handoff_instance_suite
test-pg-instance: install  ## the whole suite with the Dagster instance's storage in a new PostgreSQL database
	$(BIN)/python -c "import psycopg2; db = psycopg2.connect(host='127.0.0.1', dbname='test', user='postgres'); \
	db.autocommit = True; db.cursor().execute('drop database if exists $(PG_INSTANCE_DB)'); \
	db.cursor().execute('create database $(PG_INSTANCE_DB)')"
	HANDOFF_DAGSTER_PG_URL=postgresql://postgres@127.0.0.1:5432/$(PG_INSTANCE_DB) $(BIN)/pytest

ui: install  ## open the Dagster UI on the project's instance
	$(BIN)/handoff ui

validate: install  ## check that the code location loads
	$(BIN)/dagster definitions validate -w workspace.yaml

$(BIN)/pip-compile:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install pip-tools==7.7.0

lock: $(BIN)/pip-compile  ## re-resolve both locks: the product's runtime, then the tests' and checks' on top of it
	$(COMPILE) -o requirements.lock pyproject.toml
	$(COMPILE) -o requirements-dev.lock requirements-dev.in
	# Handoff's own packages come from the work tree (make install), not from the lock.
	awk '/^# WARNING: pip install will require/{skip=1} /^[a-zA-Z]/{skip=0} !skip' requirements-dev.lock \
		> requirements-dev.lock.tmp && mv requirements-dev.lock.tmp requirements-dev.lock

clean:
	rm -rf $(VENV) .handoff dbt_project/target dbt_project/logs
