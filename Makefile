# Two commands on a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo test test-pg-instance ui lock validate clean

$(INSTALLED): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(INSTALLED)

demo: install  ## run the demo end to end: sandbox + DuckDB + SQLite Dagster storage
	$(BIN)/handoff demo

test: install  ## run the whole test suite
	$(BIN)/pytest

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

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra test --strip-extras -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .handoff dbt_project/target dbt_project/logs
